/**
 * @polyglot/worker: write polyglot workers in TypeScript.
 *
 * A worker is a process that serves one module's methods to polyglot-host over the wire
 * protocol of docs/protocol.md (JSON lines or length-prefixed MessagePack, on stdio or the
 * host's local socket). No runtime dependency.
 *
 * Layout:
 * - `worker`: `Worker`, method registration, dispatch, serving (stdio, socket, in-process).
 * - `module`: a module's exported functions as a worker (`serveModule`).
 * - `run`: the launcher the runtime starts for a manifest's `.ts` and `.js` files.
 * - `context`: `Context`, a call's id, progress, logs and cancellation (`AbortSignal`).
 * - `params`: `bindParams`, named or positional params as the other SDKs bind them.
 * - `envelope`: requests, responses, progress, logs and the handshake: build and validate.
 * - `codec`: framing and the two codecs; a frame decoder that never buffers oversize frames.
 * - `json`, `msgpack`: the two codecs' values, integers and floats told apart.
 * - `values`: protocol values in JavaScript (`Float`, `Uint8Array`, `bigint`).
 * - `errors`: `MethodError`, `ErrorCode` and the protocol errors.
 * - `testing`: run a worker in-process on messages.
 *
 * ```ts
 * import { Worker } from "@polyglot/worker";
 *
 * const worker = new Worker("text-ts", { version: "1.0.0" });
 * worker.method("upper", ([text]: any) => String(text).toUpperCase());
 * worker.serve();
 * ```
 */

export {
  CODECS,
  type Codec,
  type CodecName,
  DEFAULT_MAX_FRAME,
  FrameDecoder,
  type FrameEvent,
  HEAD_BYTES,
  JsonFrameDecoder,
  MsgpackFrameDecoder,
  getCodec,
  jsonCodec,
  jsonIdFromHead,
  msgpackCodec,
  msgpackIdFromHead,
} from "./codec.js";
export { type CallSink, Context } from "./context.js";
export {
  type ErrorObject,
  type Handshake,
  type HandshakeOptions,
  type HandshakeRules,
  LOG_LEVELS,
  type LogLevel,
  PROTOCOL_VERSION,
  type Request,
  SUPPORTED_VERSIONS,
  type WorkerMessage,
  buildHandshake,
  checkHandshake,
  errorResponse,
  handshakeFields,
  handshakeLine,
  isId,
  logMessage,
  parseHandshake,
  parseMessage,
  parseRequest,
  progressMessage,
  request,
  resultResponse,
} from "./envelope.js";
export {
  DecodeError,
  EncodeError,
  ErrorCode,
  FrameTooLarge,
  type Id,
  InvalidHandshake,
  InvalidMessage,
  InvalidRequest,
  MethodError,
  ProtocolError,
} from "./errors.js";
export { decodeJson, encodeJson } from "./json.js";
export { type ModuleExports, serveModule, workerFromExports } from "./module.js";
export { decodeMsgpack, encodeMsgpack } from "./msgpack.js";
export { bindParams } from "./params.js";
export { type Session, runSession } from "./testing.js";
export {
  BYTES_KEY,
  Float,
  INT_MIN,
  UINT_MAX,
  type Value,
  type ValueMap,
  decodeBase64,
  encodeBase64,
  fromJsonForm,
  isInteger,
  isMap,
  sameValue,
  toJsonForm,
  toNumber,
  typeName,
} from "./values.js";
export {
  Connection,
  DEFAULT_MAX_CONCURRENCY,
  type Handler,
  type HealthCheck,
  type ServeOptions,
  Worker,
  type WorkerOptions,
  isServing,
  isWorker,
  logStderr,
} from "./worker.js";
