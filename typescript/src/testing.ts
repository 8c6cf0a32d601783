/**
 * Running a worker in-process on messages, through its real framing and dispatch: for a
 * worker's own tests, and for this SDK's replay of `tests/vectors/`.
 */

import { getCodec } from "./codec.js";
import { type Handshake, parseHandshake } from "./envelope.js";
import { type Id } from "./errors.js";
import { type Value, type ValueMap, isMap } from "./values.js";
import { type Worker } from "./worker.js";

/** What a worker wrote in a {@link runSession}. */
export interface Session {
  /** The exit status serving would have exited with. */
  readonly status: number;
  /** Its handshake. */
  readonly handshake: Handshake;
  /** Every message after the handshake, decoded, in order. */
  readonly messages: ValueMap[];
  /** The response to call `id` (a result or an error), if it was answered. */
  response(id: Id): ValueMap | undefined;
}

/**
 * Feeds `messages` to `worker`, each framed with `codec`, then `$shutdown` (which lets the
 * calls held finish), and returns what the worker wrote.
 */
export async function runSession(worker: Worker, messages: readonly Value[], opts: { codec?: string; maxFrame?: number } = {}): Promise<Session> {
  const codec = getCodec(opts.codec ?? "json");
  const chunks: Buffer[] = [];
  const conn = worker.connect((b) => chunks.push(Buffer.from(b)), { codec: codec.name, ...(opts.maxFrame ? { maxFrame: opts.maxFrame } : {}) });
  for (const m of messages) conn.onData(codec.frame(codec.encode(m)));
  conn.onData(codec.frame(codec.encode({ method: "$shutdown" })));
  const status = await conn.ended;
  const out = Buffer.concat(chunks);
  const nl = out.indexOf(10);
  const handshake = parseHandshake(out.subarray(0, nl));
  const decoder = codec.frameDecoder();
  const decoded: ValueMap[] = [];
  for (const ev of decoder.feed(out.subarray(nl + 1))) {
    if (!("frame" in ev)) throw new Error(`the worker wrote an oversize frame (${ev.size} bytes)`);
    const v = codec.decode(ev.frame);
    if (!isMap(v)) throw new Error("the worker wrote a message that is not an object");
    decoded.push(v);
  }
  if (decoder.finish() !== undefined) throw new Error("the worker's output ended inside a frame");
  const key = (id: unknown): string => `${typeof id === "string" ? "s" : "n"}${String(id)}`;
  const responses = new Map<string, ValueMap>();
  for (const m of decoded) if ("result" in m || "error" in m) responses.set(key(m["id"]), m);
  return { status, handshake, messages: decoded, response: (id) => responses.get(key(id)) };
}
