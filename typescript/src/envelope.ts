/**
 * The protocol's messages: parse and validate them, and build them (docs/protocol.md,
 * sections 2 and 4).
 *
 * Worker side: {@link parseRequest} validates what the host sends; {@link resultResponse},
 * {@link errorResponse}, {@link progressMessage}, {@link logMessage} and
 * {@link buildHandshake} build what the worker sends, `id` first as the spec asks of
 * writers.
 *
 * Host side, for tests and tools: {@link parseMessage} validates what a worker sends, and
 * {@link parseHandshake} / {@link checkHandshake} apply the host's handshake rules, so a
 * worker's author can check a worker's output without a host.
 */

import { CODECS, type CodecName } from "./codec.js";
import { type Id, InvalidHandshake, InvalidMessage, InvalidRequest } from "./errors.js";
import { INT_MIN, UINT_MAX, type Value, type ValueMap, isInteger, isMap, typeName } from "./values.js";

/** The protocol version this SDK speaks (`polyglot` in the handshake). */
export const PROTOCOL_VERSION = 1;

/** Every protocol version this SDK speaks. */
export const SUPPORTED_VERSIONS: readonly number[] = [PROTOCOL_VERSION];

/** The levels of a log message, least severe first. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error"] as const;

/** A log message's level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Milliseconds since the Unix epoch: the unit of every `timestamp`. */
export function nowMs(): number {
  return Date.now();
}

/** Whether `v` is a valid id: a 64-bit integer (signed or unsigned) or a string. */
export function isId(v: unknown): v is Id {
  return typeof v === "string" || isInteger(v);
}

function idProblem(v: unknown): string {
  const outOfRange = typeof v === "bigint" && (v < INT_MIN || v > UINT_MAX);
  return `id must be an integer or a string, got ${typeName(v)}${outOfRange ? " out of the 64-bit range" : ""}`;
}

function has(obj: ValueMap, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

// ------------------------------------------------------------------ requests

/** A validated request. `id` is `undefined` for a notification. */
export interface Request {
  /** The method to run. */
  readonly method: string;
  /** Its params: `null` when the request has none. */
  readonly params: Value;
  /** The call's id; `undefined` for a notification, which is never answered. */
  readonly id: Id | undefined;
  /** When the host sent it, in milliseconds since the Unix epoch. */
  readonly timestamp: number | undefined;
  /** How long the host waits for this call, in milliseconds. */
  readonly timeoutMs: number | undefined;
}

/**
 * Validates a decoded request.
 *
 * @throws {InvalidRequest} naming the broken field; its `id` is the request's id when it
 * could be read, so the caller can answer `INVALID_REQUEST`.
 */
export function parseRequest(obj: Value): Request {
  if (!isMap(obj)) throw new InvalidRequest(`a request must be an object, got ${typeName(obj)}`);
  let id: Id | undefined;
  if (has(obj, "id")) {
    const raw = obj["id"];
    if (!isId(raw)) throw new InvalidRequest(idProblem(raw));
    id = raw;
  }
  if (!has(obj, "method")) throw new InvalidRequest("missing method", id);
  const method = obj["method"];
  if (typeof method !== "string") throw new InvalidRequest(`method must be a string, got ${typeName(method)}`, id);
  const timestamp = obj["timestamp"] ?? null;
  if (timestamp !== null && !isInteger(timestamp)) {
    throw new InvalidRequest(`timestamp must be an integer, got ${typeName(timestamp)}`, id);
  }
  const timeoutMs = obj["timeoutMs"] ?? null;
  if (timeoutMs !== null && !(isInteger(timeoutMs) && timeoutMs >= 0)) {
    throw new InvalidRequest(`timeoutMs must be a non-negative integer, got ${typeName(timeoutMs)}`, id);
  }
  return {
    method,
    params: obj["params"] ?? null,
    id,
    timestamp: timestamp === null ? undefined : Number(timestamp),
    timeoutMs: timeoutMs === null ? undefined : Number(timeoutMs),
  };
}

/** Builds a request (or a notification when `id` is `undefined`), `id` first. For tests
 * and tools that play the host. */
export function request(method: string, params?: Value, id?: Id, extra: ValueMap = {}): ValueMap {
  const msg: ValueMap = id === undefined ? {} : { id };
  msg["method"] = method;
  if (params !== undefined && params !== null) msg["params"] = params;
  return Object.assign(msg, extra);
}

// ------------------------------------------------------------------ worker messages

/** A response carrying `result` for call `id`; `executionUs` is the time spent in the
 * method, in microseconds. */
export function resultResponse(id: Id, result: unknown, executionUs?: number): Record<string, unknown> {
  const msg: Record<string, unknown> = { id, result, timestamp: nowMs() };
  if (executionUs !== undefined) msg["executionTime"] = executionUs;
  return msg;
}

/** A response carrying error `code` for call `id`. */
export function errorResponse(
  id: Id,
  code: string,
  message: string,
  data?: unknown,
  executionUs?: number,
): Record<string, unknown> {
  const error: Record<string, unknown> = { code, message };
  if (data !== undefined && data !== null) error["data"] = data;
  const msg: Record<string, unknown> = { id, error, timestamp: nowMs() };
  if (executionUs !== undefined) msg["executionTime"] = executionUs;
  return msg;
}

/** A progress message for call `id`. */
export function progressMessage(id: Id, progress: unknown): Record<string, unknown> {
  return { id, progress };
}

/** A log message.
 * @throws {RangeError} for a level not in {@link LOG_LEVELS}. */
export function logMessage(level: LogLevel, message: string, fields?: Record<string, unknown>): Record<string, unknown> {
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new RangeError(`log level must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level)}`);
  }
  const log: Record<string, unknown> = { level, message: String(message) };
  if (fields !== undefined && Object.keys(fields).length > 0) log["fields"] = fields;
  return { log };
}

/** The `error` of a response. */
export interface ErrorObject {
  readonly code: string;
  readonly message: string;
  readonly data: Value;
}

/** A validated message from a worker. */
export type WorkerMessage =
  | {
      readonly kind: "response";
      readonly id: Id;
      /** The result; meaningful when `error` is `undefined`. */
      readonly result: Value;
      readonly error: ErrorObject | undefined;
      readonly timestamp: number | undefined;
      readonly executionTime: number | undefined;
    }
  | { readonly kind: "progress"; readonly id: Id; readonly progress: Value }
  | { readonly kind: "log"; readonly level: LogLevel; readonly message: string; readonly fields: ValueMap | undefined };

/**
 * Validates a decoded message from a worker (what a host reads).
 *
 * @throws {InvalidMessage} naming the broken field.
 */
export function parseMessage(obj: Value): WorkerMessage {
  if (!isMap(obj)) throw new InvalidMessage(`a message must be an object, got ${typeName(obj)}`);
  if (has(obj, "log") && !has(obj, "id")) return parseLog(obj["log"] ?? null);
  if (!has(obj, "id")) throw new InvalidMessage("missing id: a response or progress message needs one");
  const id = obj["id"];
  if (!isId(id)) throw new InvalidMessage(`id must be an integer or a string, got ${typeName(id)}`);
  const hasResult = has(obj, "result");
  const hasError = has(obj, "error");
  if (has(obj, "progress") && !hasResult && !hasError) {
    return { kind: "progress", id, progress: obj["progress"] ?? null };
  }
  if (hasResult && hasError) throw new InvalidMessage("a response holds a result or an error, not both");
  if (!hasResult && !hasError) throw new InvalidMessage("a response needs a result or an error");
  const timestamp = obj["timestamp"] ?? null;
  if (timestamp !== null && !isInteger(timestamp)) {
    throw new InvalidMessage(`timestamp must be an integer, got ${typeName(timestamp)}`);
  }
  const execution = obj["executionTime"] ?? null;
  if (execution !== null && !(isInteger(execution) && execution >= 0)) {
    throw new InvalidMessage(`executionTime must be a non-negative integer, got ${typeName(execution)}`);
  }
  return {
    kind: "response",
    id,
    result: hasResult ? (obj["result"] ?? null) : null,
    error: hasError ? parseError(obj["error"] ?? null) : undefined,
    timestamp: timestamp === null ? undefined : Number(timestamp),
    executionTime: execution === null ? undefined : Number(execution),
  };
}

function parseError(error: Value): ErrorObject {
  if (!isMap(error)) throw new InvalidMessage(`error must be an object, got ${typeName(error)}`);
  const code = error["code"];
  if (typeof code !== "string") {
    throw new InvalidMessage(has(error, "code") ? "error.code must be a string" : "missing error.code");
  }
  const message = error["message"];
  if (typeof message !== "string") {
    throw new InvalidMessage(has(error, "message") ? "error.message must be a string" : "missing error.message");
  }
  return { code, message, data: error["data"] ?? null };
}

function parseLog(log: Value): WorkerMessage {
  if (!isMap(log)) throw new InvalidMessage(`log must be an object, got ${typeName(log)}`);
  const level = log["level"];
  if (typeof level !== "string" || !(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new InvalidMessage(`log level must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level ?? null)}`);
  }
  const message = log["message"];
  if (typeof message !== "string") throw new InvalidMessage("log message must be a string");
  const fields = log["fields"] ?? null;
  if (fields !== null && !isMap(fields)) throw new InvalidMessage(`log fields must be an object, got ${typeName(fields)}`);
  return { kind: "log", level: level as LogLevel, message, fields: fields ?? undefined };
}

// ------------------------------------------------------------------ handshake

/** A validated handshake, defaults filled in. */
export interface Handshake {
  readonly polyglot: number;
  readonly module: string;
  readonly version: string;
  readonly methods: readonly string[];
  readonly codec: CodecName;
  readonly maxConcurrency: number;
  readonly language: string | undefined;
  readonly pid: number | undefined;
}

/** The handshake's fields as they go on the wire, in the order the other SDKs write them. */
export function handshakeFields(h: Handshake): Record<string, unknown> {
  const msg: Record<string, unknown> = { polyglot: h.polyglot, module: h.module, version: h.version };
  if (h.language !== undefined) msg["language"] = h.language;
  msg["codec"] = h.codec;
  msg["methods"] = [...h.methods];
  msg["maxConcurrency"] = h.maxConcurrency;
  if (h.pid !== undefined) msg["pid"] = h.pid;
  return msg;
}

/** The handshake as the worker sends it: one JSON line, ended by `\n`. */
export function handshakeLine(h: Handshake): string {
  return `${JSON.stringify(handshakeFields(h))}\n`;
}

/** Marks a handshake field without a default. */
const REQUIRED: unique symbol = Symbol("required");

/** Options of {@link buildHandshake}. */
export interface HandshakeOptions {
  codec?: CodecName;
  maxConcurrency?: number;
  language?: string;
  pid?: number;
}

/**
 * Builds (and validates) a worker's handshake. `methods` keep the given order.
 *
 * @throws {InvalidHandshake} when a field is invalid.
 */
export function buildHandshake(module: string, version: string, methods: readonly string[], opts: HandshakeOptions = {}): Handshake {
  const h: Handshake = {
    polyglot: PROTOCOL_VERSION,
    module,
    version,
    methods: [...methods],
    codec: opts.codec ?? "json",
    maxConcurrency: opts.maxConcurrency ?? 1,
    language: opts.language ?? "typescript",
    pid: opts.pid,
  };
  return parseHandshake(handshakeLine(h));
}

/**
 * Parses and validates a handshake line (with or without its `\n`): required fields,
 * types, defaults, and a protocol version this SDK speaks. Unknown fields are ignored.
 *
 * @throws {InvalidHandshake} naming the broken field.
 */
export function parseHandshake(line: string | Uint8Array): Handshake {
  let text: string;
  if (typeof line === "string") text = line;
  else {
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(line);
    } catch {
      throw new InvalidHandshake("handshake is not UTF-8 JSON");
    }
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new InvalidHandshake(`handshake is not a JSON line: ${(e as Error).message}`);
  }
  if (!isMap(obj)) throw new InvalidHandshake(`handshake must be a JSON object, got ${typeName(obj)}`);
  const o = obj as Record<string, unknown>;
  // A field given as null counts as absent, as in the other SDKs.
  const field = <T>(name: string, check: (v: unknown) => boolean, expected: string, fallback: T | typeof REQUIRED): T => {
    const v = o[name];
    if (v === undefined || v === null) {
      if (fallback === REQUIRED) throw new InvalidHandshake(`handshake is missing ${JSON.stringify(name)} (${expected})`);
      return fallback;
    }
    if (!check(v)) {
      throw new InvalidHandshake(`handshake field ${JSON.stringify(name)} must be ${expected}, got ${JSON.stringify(v)}`);
    }
    return v as T;
  };
  const isInt = (v: unknown): boolean => typeof v === "number" && Number.isSafeInteger(v);
  const polyglot = field<number>("polyglot", isInt, "the protocol version, an integer", REQUIRED);
  if (!SUPPORTED_VERSIONS.includes(polyglot)) {
    throw new InvalidHandshake(
      `worker speaks protocol version ${polyglot}; this side speaks ${SUPPORTED_VERSIONS.join(", ")}`,
    );
  }
  const module = field<string>("module", (v) => typeof v === "string", "a string", REQUIRED);
  const version = field<string>("version", (v) => typeof v === "string", "a string", REQUIRED);
  const methods = field<string[]>(
    "methods",
    (v) => Array.isArray(v) && v.every((m) => typeof m === "string"),
    "an array of strings",
    REQUIRED,
  );
  const codec = field<CodecName>("codec", (v) => (CODECS as readonly unknown[]).includes(v), `"json" or "msgpack"`, "json");
  const maxConcurrency = field<number>("maxConcurrency", (v) => isInt(v) && (v as number) >= 1, "an integer >= 1", 1);
  const language = field<string | undefined>("language", (v) => typeof v === "string", "a string", undefined);
  const pid = field<number | undefined>("pid", isInt, "an integer", undefined);
  return { polyglot, module, version, methods, codec, maxConcurrency, language, pid };
}

/** The manifest rules a host applies to a handshake. */
export interface HandshakeRules {
  /** The manifest's module name. */
  name: string;
  /** The manifest's codec. */
  codec?: CodecName;
  /** The manifest's capabilities: methods the worker must serve. */
  capabilities?: readonly string[];
}

/**
 * Applies the host's manifest rules (docs/protocol.md, section 2) to a parsed handshake:
 * the module name, the codec, and every capability served.
 *
 * @throws {InvalidHandshake} saying which rule was broken.
 */
export function checkHandshake(h: Handshake, rules: HandshakeRules): void {
  if (h.module !== rules.name) {
    throw new InvalidHandshake(`worker serves module ${JSON.stringify(h.module)}, the manifest names ${JSON.stringify(rules.name)}`);
  }
  const codec = rules.codec ?? "json";
  if (h.codec !== codec) {
    throw new InvalidHandshake(`worker speaks codec ${JSON.stringify(h.codec)}, the manifest asks for ${JSON.stringify(codec)}`);
  }
  const missing = (rules.capabilities ?? []).filter((c) => !h.methods.includes(c));
  if (missing.length > 0) {
    throw new InvalidHandshake(`worker does not serve the manifest's capabilities: ${missing.join(", ")}`);
  }
}
