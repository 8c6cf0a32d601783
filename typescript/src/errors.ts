/**
 * Error types and the protocol's error codes (docs/protocol.md, section 6).
 */

/** An id as the protocol carries it: an integer (a `bigint` beyond 2^53) or a string. */
export type Id = number | bigint | string;

/** The error codes of the protocol. Methods may also use their own `UPPER_SNAKE` codes. */
export const ErrorCode = {
  /** The worker does not serve this method. */
  METHOD_NOT_FOUND: "METHOD_NOT_FOUND",
  /** The params do not fit the method. */
  INVALID_PARAMS: "INVALID_PARAMS",
  /** The request is not a valid envelope (answered when its id can be read). */
  INVALID_REQUEST: "INVALID_REQUEST",
  /** The method failed unexpectedly (an exception). */
  INTERNAL: "INTERNAL",
  /** The call was cancelled with `$cancel`. */
  CANCELLED: "CANCELLED",
  /** The message would exceed the frame size limit. */
  FRAME_TOO_LARGE: "FRAME_TOO_LARGE",
  /** The worker got `$shutdown` and takes no new calls. */
  SHUTTING_DOWN: "SHUTTING_DOWN",
  /** `$health`: the worker is running but unhealthy. */
  UNHEALTHY: "UNHEALTHY",
  /**
   * This implementation announces the method but does not serve it (a fallback that
   * implements part of a module): the host passes the call on to the next implementation
   * of the module's fallback chain.
   */
  NOT_SUPPORTED: "NOT_SUPPORTED",
} as const;

/**
 * Thrown by a method to answer its call with an error response.
 *
 * `code` is one of {@link ErrorCode} or the method's own `UPPER_SNAKE` code, `message` is
 * for people, and `data` (any protocol value) is for programs.
 *
 * ```ts
 * throw new MethodError("NOT_READY", "model not loaded", { retryAfterMs: 500 });
 * ```
 */
export class MethodError extends Error {
  /** The error code sent to the host. */
  readonly code: string;
  /** Details for programs (any protocol value), sent as `error.data`. */
  readonly data: unknown;

  constructor(code: string, message: string, data?: unknown) {
    if (typeof code !== "string" || code.length === 0) {
      throw new TypeError(`MethodError code must be a non-empty string, got ${String(code)}`);
    }
    super(message);
    this.name = "MethodError";
    this.code = code;
    this.data = data;
  }
}

/** A frame, message or handshake that breaks docs/protocol.md. The message names the field
 * or rule that was broken. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A frame that does not decode with its codec (not JSON, not MessagePack, bad `$bytes`). */
export class DecodeError extends ProtocolError {}

/** A value that cannot be sent: outside the protocol's data model (docs/protocol.md,
 * section 7), or not representable by the codec. */
export class EncodeError extends ProtocolError {}

/** An encoded message over the frame size limit. */
export class FrameTooLarge extends EncodeError {
  constructor(
    /** The message's size in bytes. */
    readonly size: number,
    /** The limit it is over. */
    readonly limit: number,
  ) {
    super(`the message is ${size} bytes, over the frame limit of ${limit} bytes`);
  }
}

/** A decoded request that is not a valid envelope. `id` is the request's id when it could
 * be read (so the worker can answer `INVALID_REQUEST`). */
export class InvalidRequest extends ProtocolError {
  constructor(
    message: string,
    /** The request's id, when it could be read. */
    readonly id?: Id,
  ) {
    super(message);
  }
}

/** A decoded worker message (response, progress, log) that is not valid. */
export class InvalidMessage extends ProtocolError {}

/** A handshake line that is invalid, or that a host would refuse. */
export class InvalidHandshake extends ProtocolError {}
