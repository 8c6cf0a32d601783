/**
 * `Context`: what a method knows about its call, and what it can send while it runs.
 */

import { type LogLevel } from "./envelope.js";
import { ErrorCode, type Id, MethodError } from "./errors.js";

/** What a {@link Context} needs from the connection serving its call. */
export interface CallSink {
  /** Sends a progress message for call `id`. */
  progress(id: Id, value: unknown): void;
  /** Sends a log message. */
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
}

/**
 * The call a method is serving: passed as the method's second argument.
 *
 * ```ts
 * worker.method("slow", async (params, ctx) => {
 *   for (let step = 1; step <= 10; step++) {
 *     ctx.signal.throwIfAborted();          // $cancel: stop here
 *     await doStep(step, { signal: ctx.signal });
 *     ctx.progress({ done: step, total: 10 });
 *   }
 *   return "done";
 * });
 * ```
 */
export class Context {
  /** Made when a method first asks for `signal`: an `AbortController` costs microseconds,
   * which a call that never looks at it need not pay. */
  private controller: AbortController | undefined;
  /** Why the call was cancelled, once it was. */
  private reason: MethodError | undefined;
  /** @internal The call was answered: nothing more is sent for it. */
  done = false;

  constructor(
    private readonly sink: CallSink,
    /** The call's id as the host sent it; `undefined` for a notification. */
    readonly callId: Id | undefined,
    /** The method the host called. */
    readonly method: string,
    /** How long the host waits for this call, in milliseconds, when it said so. */
    readonly timeoutMs: number | undefined,
  ) {}

  /**
   * Aborted when the host cancels the call (`$cancel`), with a `MethodError` of code
   * `CANCELLED` as its reason. Pass it on (`fetch(url, { signal })`, `setTimeout` of
   * `node:timers/promises`), or check `signal.aborted` between steps of long work. The
   * host has its answer (`CANCELLED`) as soon as the signal fires; whatever the method
   * returns or throws afterwards is dropped.
   */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.reason !== undefined) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /** Whether the host cancelled the call. */
  get cancelled(): boolean {
    return this.reason !== undefined;
  }

  /** @internal Cancels the call: aborts its signal with `reason`. */
  abort(reason: MethodError): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.controller?.abort(reason);
  }

  /**
   * Sends a progress message (`{"id": ..., "progress": value}`) for this call. Progress
   * after the call was answered (or for a notification) is dropped.
   *
   * @throws {EncodeError} when `value` cannot be sent (outside the data model, or over the
   * frame limit).
   */
  progress(value: unknown): void {
    if (this.callId === undefined || this.done) return;
    this.sink.progress(this.callId, value);
  }

  /** Sends a log message: the host writes it to its own log with the module's name.
   * `fields` are structured data logged beside the message. */
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    this.sink.log(level, message, fields);
  }

  /** Throws `MethodError(CANCELLED)` when the call was cancelled: a short way to stop. */
  throwIfCancelled(): void {
    if (this.cancelled) throw new MethodError(ErrorCode.CANCELLED, "cancelled by the host");
  }
}
