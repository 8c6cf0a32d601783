/**
 * `Worker`: method registration, dispatch, and serving one stream (docs/protocol.md,
 * sections 4, 5 and 8).
 *
 * One {@link Connection} serves one byte stream: it writes the handshake, splits the input
 * into frames, validates each request and runs it. Calls run at once, many in flight on
 * the one event loop, and each is answered when its method settles, in whatever order
 * they settle. `$health` is answered outside the method slots; `$cancel` aborts the
 * call's `AbortSignal` and answers `CANCELLED` at once; `$shutdown` refuses new calls
 * (`SHUTTING_DOWN`), lets the held ones finish, then ends the stream with status 0. When
 * the input ends, the stream ends at once, without waiting for calls still running.
 *
 * Output is gathered and written once per chunk of input read, and once per turn of the
 * event loop for answers that come later: a burst of answers is one `write`.
 */

import { type Socket, connect } from "node:net";

import { type Codec, DEFAULT_MAX_FRAME, type FrameEvent, getCodec } from "./codec.js";
import { Context } from "./context.js";
import {
  type Handshake,
  type LogLevel,
  PROTOCOL_VERSION,
  type Request,
  buildHandshake,
  errorResponse,
  handshakeLine,
  logMessage,
  parseRequest,
  progressMessage,
  resultResponse,
} from "./envelope.js";
import { DecodeError, EncodeError, ErrorCode, FrameTooLarge, type Id, InvalidRequest, MethodError } from "./errors.js";
import { type Value, isMap } from "./values.js";

/** A method: takes the call's params (`null` when the request has none) and its
 * {@link Context}, returns its result (or a promise of it). `undefined` is sent as `null`.
 * Throwing a {@link MethodError} answers with its code; anything else thrown answers
 * `INTERNAL`. */
export type Handler = (params: Value, ctx: Context) => unknown;

/** A health function: its object result is merged into `{"status": "ok"}`; throwing
 * answers `$health` with an error (`UNHEALTHY` unless it is a {@link MethodError}). */
export type HealthCheck = (ctx: Context) => unknown;

/** How many calls a worker takes at once unless told otherwise: JavaScript methods share
 * one event loop, so more slots only help methods that wait (I/O, timers); 16 keeps the
 * host's queue, not this process, holding the backlog of CPU-bound calls. */
export const DEFAULT_MAX_CONCURRENCY = 16;

/** Options of a {@link Worker}. */
export interface WorkerOptions {
  /** The worker's version, in its handshake. Default: `POLYGLOT_VERSION`, else `0.0.0`. */
  version?: string;
  /** How many calls it announces it takes at once. Default {@link DEFAULT_MAX_CONCURRENCY}. */
  maxConcurrency?: number;
}

/** Options of serving one stream. */
export interface ServeOptions {
  /** The codec of every frame after the handshake: `json` (default) or `msgpack`. */
  codec?: string;
  /** The frame size limit in bytes. Default {@link DEFAULT_MAX_FRAME}. */
  maxFrame?: number;
}

/** Brands a worker across copies of this package, so that a module importing its own copy
 * is still recognised by the launcher. */
const WORKER_BRAND = Symbol.for("polyglot.worker");
/** Set on `globalThis` once a worker serves in this process (by any copy of the SDK). */
const SERVING = Symbol.for("polyglot.worker.serving");

/** Writes one line to stderr (which the host forwards to its log), never failing. */
export function logStderr(message: string): void {
  try {
    process.stderr.write(`polyglot worker: ${message}\n`);
  } catch {
    // stderr closed: nowhere left to report.
  }
}

/** Whether a worker is serving in this process. */
export function isServing(): boolean {
  return (globalThis as Record<symbol, unknown>)[SERVING] === true;
}

/** Whether `v` is a {@link Worker} (of this or another copy of this package). */
export function isWorker(v: unknown): v is Worker {
  return typeof v === "object" && v !== null && (v as Record<symbol, unknown>)[WORKER_BRAND] === true;
}

/** Whether `e` is a {@link MethodError} (of this or another copy of this package). */
function isMethodError(e: unknown): e is MethodError {
  return (
    e instanceof MethodError ||
    (e instanceof Error && e.name === "MethodError" && typeof (e as { code?: unknown }).code === "string")
  );
}

/** What an error says, for an `INTERNAL` answer. */
function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return `thrown: ${String(e)}`;
}

/**
 * A worker: a module's methods, served to `polyglot-host`.
 *
 * ```ts
 * import { MethodError, Worker } from "@polyglot/worker";
 *
 * const worker = new Worker("text-ts", { version: "1.0.0" });
 * worker.method("upper", (params) => {
 *   const [text] = params as [unknown];
 *   if (typeof text !== "string") throw new MethodError("INVALID_PARAMS", "upper takes a string");
 *   return text.toUpperCase();
 * });
 * worker.serve();
 * ```
 */
export class Worker {
  /** @internal */
  readonly [WORKER_BRAND] = true;
  /** The module it serves (the handshake's `module`). */
  readonly name: string;
  /** Its version (the handshake's `version`). */
  readonly version: string;
  /** How many calls it announces it takes at once. */
  readonly maxConcurrency: number;
  private readonly handlers = new Map<string, Handler>();
  private healthFn: HealthCheck | undefined;

  /**
   * @param name The module it serves. Default: `POLYGLOT_MODULE`, the name the host passes
   * (a fallback file serves under its module's name).
   */
  constructor(name?: string, opts: WorkerOptions = {}) {
    this.name = name ?? process.env["POLYGLOT_MODULE"] ?? "typescript-worker";
    this.version = opts.version ?? process.env["POLYGLOT_VERSION"] ?? "0.0.0";
    const n = opts.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY;
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`maxConcurrency must be an integer >= 1, got ${n}`);
    this.maxConcurrency = n;
  }

  /** Registers `fn` as method `name`. Names starting with `$` are the protocol's. */
  method(name: string, fn: Handler): this {
    if (typeof name !== "string" || name.length === 0 || name.startsWith("$")) {
      throw new RangeError(`${JSON.stringify(name)} cannot be a method name (empty, or a reserved $ method)`);
    }
    if (typeof fn !== "function") throw new TypeError(`method ${name}: not a function`);
    if (this.handlers.has(name)) throw new RangeError(`method ${name} is registered twice`);
    this.handlers.set(name, fn);
    return this;
  }

  /** Registers `fn` as the health function `$health` calls. */
  health(fn: HealthCheck): this {
    this.healthFn = fn;
    return this;
  }

  /** The method names it serves, in the order registered. */
  get methods(): string[] {
    return [...this.handlers.keys()];
  }

  /** @internal */
  handler(name: string): Handler | undefined {
    return this.handlers.get(name);
  }

  /** @internal */
  get healthCheck(): HealthCheck | undefined {
    return this.healthFn;
  }

  /** Its handshake for `codec`. */
  handshake(codec = "json"): Handshake {
    return buildHandshake(this.name, this.version, this.methods, {
      codec: getCodec(codec).name,
      maxConcurrency: this.maxConcurrency,
      language: "typescript",
      pid: process.pid,
    });
  }

  /**
   * Serves as the host started this program, then ends the process.
   *
   * Reads `POLYGLOT_*` from the environment: the transport (stdio, or the host's socket),
   * the codec and the frame limit. Started by hand (no `POLYGLOT_PROTOCOL`), it says what
   * it is on stderr and exits 1. Exits 0 when the input ends or after `$shutdown`.
   */
  async serve(): Promise<void> {
    const env = process.env;
    const protocol = env["POLYGLOT_PROTOCOL"];
    if (protocol === undefined) {
      process.stderr.write(
        `This program is a polyglot worker for module ${JSON.stringify(this.name)}. It is started by ` +
          "polyglot-host, which speaks to it over stdin/stdout (see docs/protocol.md); add it to a " +
          "module.json and run polyglot-host instead.\n",
      );
      return exit(1);
    }
    if (protocol.trim() !== String(PROTOCOL_VERSION)) {
      process.stderr.write(
        `polyglot worker ${JSON.stringify(this.name)}: the host speaks protocol version ${JSON.stringify(protocol)} ` +
          `(POLYGLOT_PROTOCOL), but this worker's SDK (@polyglot/worker for TypeScript) speaks version ` +
          `${PROTOCOL_VERSION}. Use a host and an SDK of the same protocol version.\n`,
      );
      return exit(1);
    }
    const codec = env["POLYGLOT_CODEC"] || "json";
    const limit = env["POLYGLOT_MAX_FRAME"] ? Number(env["POLYGLOT_MAX_FRAME"]) : DEFAULT_MAX_FRAME;
    if (codec !== "json" && codec !== "msgpack") {
      logStderr(`POLYGLOT_CODEC=${JSON.stringify(codec)} is not a codec; the protocol knows json, msgpack`);
      return exit(1);
    }
    if (!Number.isSafeInteger(limit) || limit < 1) {
      logStderr(`POLYGLOT_MAX_FRAME=${JSON.stringify(env["POLYGLOT_MAX_FRAME"])} is not a size in bytes`);
      return exit(1);
    }
    const transport = env["POLYGLOT_TRANSPORT"] || "stdio";
    if (transport === "stdio") return this.serveStdio({ codec, maxFrame: limit });
    if (transport === "socket") {
      const path = env["POLYGLOT_SOCKET"];
      if (!path) {
        logStderr("POLYGLOT_TRANSPORT=socket needs POLYGLOT_SOCKET, the socket to connect to");
        return exit(1);
      }
      return this.serveSocket(path, { codec, maxFrame: limit });
    }
    if (transport === "grpc") {
      logStderr(
        'POLYGLOT_TRANSPORT=grpc: this SDK serves the stdio and socket transports; use "transport": ' +
          '"stdio" or "socket" in module.json (the Rust, Go and C++ SDKs serve gRPC)',
      );
      return exit(1);
    }
    logStderr(`POLYGLOT_TRANSPORT=${JSON.stringify(transport)} is not a transport; the protocol knows stdio, socket and grpc`);
    return exit(1);
  }

  /**
   * Serves the protocol on stdin and stdout, then ends the process (status 0 when stdin
   * ends or after `$shutdown`).
   *
   * Stdout belongs to the protocol: from here on, what the program writes to
   * `process.stdout` (`console.log` included) goes to stderr, which the host logs. Child
   * processes started with `stdio: "inherit"` write to the real stdout and break the
   * protocol: give them `"pipe"` or `"ignore"`.
   */
  async serveStdio(opts: ServeOptions = {}): Promise<void> {
    markServing();
    const out = process.stdout;
    const write = out.write.bind(out) as (chunk: Uint8Array) => boolean;
    // The program's own output (console.log, process.stdout.write) goes to stderr.
    out.write = process.stderr.write.bind(process.stderr) as typeof out.write;
    // The host closed the protocol's stream: it is gone, or wants this worker gone.
    out.on("error", () => process.exit(0));
    const conn = new Connection(this, getCodec(opts.codec ?? "json"), opts.maxFrame ?? DEFAULT_MAX_FRAME, (b) => {
      write(b);
    });
    process.stdin.on("data", (chunk: Buffer) => conn.onData(chunk));
    process.stdin.on("end", () => conn.onEnd());
    process.stdin.on("error", () => conn.onEnd());
    conn.start();
    const status = await conn.ended;
    conn.flush();
    return exit(status);
  }

  /** Serves the protocol on the host's local socket `path` (the socket transport), then
   * ends the process. Stdout and stderr stay the program's. */
  async serveSocket(path: string, opts: ServeOptions = {}): Promise<void> {
    markServing();
    const sock: Socket = connect(path);
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once("connect", resolve);
        sock.once("error", reject);
      });
    } catch (e) {
      logStderr(`cannot connect to the host's socket ${JSON.stringify(path)}: ${(e as Error).message}`);
      return exit(1);
    }
    sock.setNoDelay(true);
    const conn = new Connection(this, getCodec(opts.codec ?? "json"), opts.maxFrame ?? DEFAULT_MAX_FRAME, (b) => {
      sock.write(b);
    });
    sock.on("data", (chunk: Buffer) => conn.onData(chunk));
    sock.on("end", () => conn.onEnd());
    sock.on("error", () => conn.onEnd());
    conn.start();
    const status = await conn.ended;
    conn.flush();
    await new Promise<void>((resolve) => sock.end(resolve));
    return exit(status);
  }

  /**
   * Serves one stream in this process, the way {@link serveStdio} serves stdio: writes the
   * handshake with `write`, answers the chunks given to the returned connection's
   * `onData`, and resolves `ended` with the exit status the process would exit with.
   * Touches no environment and no stdio: for tests.
   */
  connect(write: (chunk: Uint8Array) => void, opts: ServeOptions = {}): Connection {
    const conn = new Connection(this, getCodec(opts.codec ?? "json"), opts.maxFrame ?? DEFAULT_MAX_FRAME, write);
    conn.start();
    return conn;
  }
}

function markServing(): void {
  if (isServing()) throw new Error("a worker is already serving in this process");
  (globalThis as Record<symbol, unknown>)[SERVING] = true;
  // Node ends the process on a promise rejection nobody handles: for a worker, every call
  // in flight would fail for one forgotten `await`. Log it and serve on, unless the
  // program chose its own policy.
  if (process.listenerCount("unhandledRejection") === 0) {
    process.on("unhandledRejection", (reason) => {
      const text = reason instanceof Error ? (reason.stack ?? reason.message) : String(reason);
      logStderr(`a promise was rejected and nothing handled it (the worker serves on): ${text}`);
    });
  }
}

/** Ends the process with `status` once stdout and stderr have taken what was written. */
function exit(status: number): Promise<void> {
  process.exitCode = status;
  // Writes to pipes are synchronous on Linux and macOS; a turn of the loop lets any
  // asynchronous ones (a socket, a file) finish.
  setImmediate(() => process.exit(status));
  return new Promise<void>(() => {});
}

// ---------------------------------------------------------------- one served stream

/** A call in flight. */
class Call {
  constructor(readonly ctx: Context) {}
}

/** A key for an id: `7` and `"7"` are different ids. */
function idKey(id: Id): string {
  return typeof id === "string" ? `s${id}` : `n${id}`;
}

/** Serves one stream: see the module docs. */
export class Connection {
  private readonly decoder;
  private readonly calls = new Map<string, Call>();
  private notifications = 0;
  private shuttingDown = false;
  private pending: Uint8Array[] = [];
  private flushScheduled = false;
  private resolveEnded!: (status: number) => void;
  private finished = false;
  /** Resolves with the exit status once the stream is done: 0 when the input ended or
   * after `$shutdown` drained the calls. */
  readonly ended: Promise<number>;

  constructor(
    private readonly worker: Worker,
    private readonly codec: Codec,
    private readonly maxFrame: number,
    private readonly write: (chunk: Uint8Array) => void,
  ) {
    this.decoder = codec.frameDecoder(maxFrame);
    this.ended = new Promise((resolve) => {
      this.resolveEnded = resolve;
    });
  }

  /** Sends the handshake. */
  start(): void {
    this.send(Buffer.from(handshakeLine(this.worker.handshake(this.codec.name)), "utf8"));
  }

  private end(status: number): void {
    if (this.finished) return;
    this.flush();
    this.finished = true;
    // Calls still running are abandoned: their signals tell them to stop.
    for (const call of this.calls.values()) {
      call.ctx.done = true;
      call.ctx.abort(new MethodError(ErrorCode.CANCELLED, "the worker is stopping"));
    }
    this.calls.clear();
    this.resolveEnded(status);
  }

  // ------------------------------------------------------------ sending

  private send(frame: Uint8Array): void {
    if (this.finished) return;
    this.pending.push(frame);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes what is waiting to be sent, as one chunk. */
  flush(): void {
    this.flushScheduled = false;
    const p = this.pending;
    if (p.length === 0) return;
    this.pending = [];
    try {
      this.write(p.length === 1 ? (p[0] as Uint8Array) : Buffer.concat(p));
    } catch (e) {
      logStderr(`writing to the host failed, stopping: ${(e as Error).message}`);
      this.end(1);
    }
  }

  /** The framed bytes of `message`.
   * @throws {EncodeError} ({@link FrameTooLarge} over the limit). */
  private encodeFrame(message: unknown): Uint8Array {
    const payload = this.codec.encode(message);
    if (payload.length > this.maxFrame) throw new FrameTooLarge(payload.length, this.maxFrame);
    return this.codec.frame(payload);
  }

  /** Sends a response; one that cannot be sent is replaced by an error response
   * (`FRAME_TOO_LARGE` over the limit, `INTERNAL` outside the data model). Marks `ctx`
   * answered, so no progress follows its response. */
  private respond(message: Record<string, unknown>, ctx?: Context): void {
    if (ctx !== undefined) {
      if (ctx.done) return;
      ctx.done = true;
    }
    const id = message["id"] as Id;
    let frame: Uint8Array;
    try {
      frame = this.encodeFrame(message);
    } catch (e) {
      if (!(e instanceof EncodeError)) throw e;
      const exec = message["executionTime"] as number | undefined;
      if (e instanceof FrameTooLarge) {
        const text = `the response is ${e.size} bytes, over the frame limit of ${e.limit} bytes`;
        frame = this.encodeFrame(errorResponse(id, ErrorCode.FRAME_TOO_LARGE, text, undefined, exec));
      } else {
        const what = "result" in message ? "result" : "error";
        const text = `the ${what} cannot be sent: ${e.message}`;
        frame = this.encodeFrame(errorResponse(id, ErrorCode.INTERNAL, text, undefined, exec));
      }
    }
    this.send(frame);
  }

  private answerError(id: Id, code: string, message: string): void {
    this.respond(errorResponse(id, code, message));
  }

  /** @internal For {@link Context.progress}. */
  progress(id: Id, value: unknown): void {
    this.send(this.encodeFrame(progressMessage(id, value)));
  }

  /** @internal For {@link Context.log}. */
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    try {
      this.send(this.encodeFrame(logMessage(level, message, fields)));
    } catch (e) {
      logStderr(`a log message could not be sent (${(e as Error).message}): ${level}: ${message}`);
    }
  }

  // ------------------------------------------------------------ reading

  /** Takes the next bytes of the input. */
  onData(chunk: Uint8Array): void {
    if (this.finished) return;
    let events: FrameEvent[];
    try {
      events = this.decoder.feed(chunk);
    } catch (e) {
      logStderr(`the input could not be read: ${(e as Error).message}`);
      this.end(1);
      return;
    }
    for (const ev of events) {
      if ("frame" in ev) this.onFrame(ev.frame);
      else if (ev.id !== undefined) {
        this.answerError(
          ev.id,
          ErrorCode.FRAME_TOO_LARGE,
          `the request is ${ev.size} bytes, over the frame limit of ${this.maxFrame} bytes`,
        );
      } else {
        logStderr(`dropped a ${ev.size}-byte request over the frame limit (no id readable)`);
      }
    }
    // The answers of methods that returned at once go out now, one write for the chunk;
    // those of async methods at the end of this turn of the event loop.
    this.flush();
  }

  /** The input ended: the host is gone or wants this worker gone. */
  onEnd(): void {
    const truncated = this.decoder.finish();
    if (truncated !== undefined) logStderr(`the input ended inside a frame (${truncated} bytes of it)`);
    // After $shutdown the held calls finish first; otherwise stop now, abandoning calls.
    if (!this.shuttingDown) this.end(0);
  }

  private onFrame(payload: Uint8Array): void {
    let req: Request;
    try {
      req = parseRequest(this.codec.decode(payload));
    } catch (e) {
      if (e instanceof DecodeError) {
        const id = this.codec.idFromHead(payload);
        if (id !== undefined) this.answerError(id, ErrorCode.INVALID_REQUEST, e.message);
        else logStderr(`dropped a request that does not decode: ${e.message}`);
        return;
      }
      if (e instanceof InvalidRequest) {
        if (e.id !== undefined) this.answerError(e.id, ErrorCode.INVALID_REQUEST, e.message);
        else logStderr(`dropped an invalid request: ${e.message}`);
        return;
      }
      throw e;
    }
    this.dispatch(req);
  }

  // ------------------------------------------------------------ dispatch

  private dispatch(req: Request): void {
    const { method, id } = req;
    if (method === "$cancel") {
      this.cancel(req.params);
      if (id !== undefined) this.respond(resultResponse(id, null));
      return;
    }
    if (method === "$shutdown") {
      if (id !== undefined) this.respond(resultResponse(id, null));
      this.shuttingDown = true;
      this.maybeDrained();
      return;
    }
    if (this.shuttingDown) {
      if (id !== undefined) {
        this.answerError(id, ErrorCode.SHUTTING_DOWN, `the worker is shutting down and takes no new calls (${method})`);
      }
      return;
    }
    if (method === "$health") {
      if (id === undefined) return;
      const fn = this.worker.healthCheck;
      if (fn === undefined) this.respond(resultResponse(id, { status: "ok" }, 0));
      else this.begin(req, (_params, ctx) => fn(ctx), true);
      return;
    }
    if (method.startsWith("$")) {
      if (id !== undefined) {
        this.answerError(id, ErrorCode.METHOD_NOT_FOUND, `${JSON.stringify(method)} is not a reserved method this worker knows`);
      }
      return;
    }
    const handler = this.worker.handler(method);
    if (handler === undefined) {
      if (id !== undefined) {
        const served = this.worker.methods.join(", ") || "nothing";
        this.answerError(
          id,
          ErrorCode.METHOD_NOT_FOUND,
          `this worker (${this.worker.name}) does not serve ${JSON.stringify(method)}; it serves ${served}`,
        );
      } else {
        logStderr(`dropped a notification of unknown method ${JSON.stringify(method)}`);
      }
      return;
    }
    if (id !== undefined && this.calls.has(idKey(id))) {
      this.answerError(id, ErrorCode.INVALID_REQUEST, `id ${String(id)} is already in flight`);
      return;
    }
    this.begin(req, handler, false);
  }

  private begin(req: Request, handler: Handler, health: boolean): void {
    const ctx = new Context(this, req.id, req.method, req.timeoutMs);
    const call = new Call(ctx);
    if (req.id === undefined) this.notifications++;
    else this.calls.set(idKey(req.id), call);
    void this.run(req, handler, call, health);
  }

  /** `$cancel`: answers the call `CANCELLED` now and aborts its signal. */
  private cancel(params: Value): void {
    const target = isMap(params) ? params["id"] : undefined;
    if (typeof target !== "string" && typeof target !== "number" && typeof target !== "bigint") return;
    const key = idKey(target);
    const call = this.calls.get(key);
    if (call === undefined) return; // unknown, or already answered
    this.calls.delete(key);
    this.respond(errorResponse(target, ErrorCode.CANCELLED, "cancelled by the host"), call.ctx);
    call.ctx.abort(new MethodError(ErrorCode.CANCELLED, "cancelled by the host"));
    this.maybeDrained();
  }

  private maybeDrained(): void {
    if (this.shuttingDown && this.calls.size === 0 && this.notifications === 0) this.end(0);
  }

  private async run(req: Request, handler: Handler, call: Call, health: boolean): Promise<void> {
    const ctx = call.ctx;
    const started = performance.now();
    let outcome: { result: unknown } | { error: [string, string, unknown] };
    try {
      let value = handler(health ? null : req.params, ctx);
      if (value !== null && typeof value === "object" && typeof (value as PromiseLike<unknown>).then === "function") {
        value = await value;
      }
      outcome = { result: health ? healthResult(value) : value === undefined ? null : value };
    } catch (e) {
      if (isMethodError(e)) outcome = { error: [e.code, e.message, e.data] };
      else if (health) outcome = { error: [ErrorCode.UNHEALTHY, describe(e), undefined] };
      else {
        if (!ctx.cancelled) {
          const stack = e instanceof Error && e.stack ? e.stack : describe(e);
          logStderr(`method ${req.method} failed:\n${stack}`);
        }
        outcome = { error: [ErrorCode.INTERNAL, describe(e), undefined] };
      }
    }
    const id = req.id;
    if (id === undefined) {
      this.notifications--;
      if ("error" in outcome) logStderr(`notification ${req.method} failed: ${outcome.error[0]}: ${outcome.error[1]}`);
      this.maybeDrained();
      return;
    }
    const key = idKey(id);
    if (this.calls.get(key) === call) this.calls.delete(key);
    // Cancelled: answered already (ctx.done), and this outcome is dropped.
    const us = Math.round((performance.now() - started) * 1000);
    if ("result" in outcome) this.respond(resultResponse(id, outcome.result, us), ctx);
    else this.respond(errorResponse(id, outcome.error[0], outcome.error[1], outcome.error[2], us), ctx);
    this.maybeDrained();
  }
}

function healthResult(v: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = { status: "ok" };
  if (v === undefined || v === null) return out;
  if (!isMap(v)) throw new TypeError(`the health function returned a ${typeof v}, not an object`);
  return Object.assign(out, v);
}
