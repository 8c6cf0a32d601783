/**
 * Framing and the two codecs (docs/protocol.md, sections 3 and 7).
 *
 * A {@link Codec} turns one message into a payload and back (`encode`, `decode`) and adds
 * the framing (`frame`). A {@link FrameDecoder} splits a byte stream into payloads without
 * doing any I/O: `feed` it bytes, it returns the events they completed; "need more bytes"
 * is the normal state, not an error. At end of stream, `finish` tells a clean end from one
 * inside a frame.
 *
 * An oversize frame is never buffered whole: the decoder keeps its first
 * {@link HEAD_BYTES} bytes (to read the `id` from), counts and drops the rest, and yields
 * a `tooLarge` event.
 */

import { DecodeError, EncodeError, type Id } from "./errors.js";
import { decodeJson, encodeJson } from "./json.js";
import { decodeMsgpack, encodeMsgpack } from "./msgpack.js";
import { INT_MIN, UINT_MAX, type Value, intValue } from "./values.js";

/** The codec names the protocol knows. */
export const CODECS = ["json", "msgpack"] as const;

/** A codec's name. */
export type CodecName = (typeof CODECS)[number];

/** The default frame size limit (64 MiB): large enough for real payloads (images, model
 * inputs), small enough that a runaway writer cannot exhaust the reader's memory. */
export const DEFAULT_MAX_FRAME = 64 * 1024 * 1024;

/** How much of an oversize frame is kept to read its `id` from. Writers put `id` first, so
 * a few hundred bytes hold it even when it is a long string. Same value as the other SDKs. */
export const HEAD_BYTES = 512;

/** What a {@link FrameDecoder} yields: a whole frame's payload (for JSON, the line without
 * `\n` or `\r\n`), or an oversize frame that was skipped, with its id when its first
 * bytes hold one. */
export type FrameEvent = { frame: Buffer } | { tooLarge: true; size: number; id: Id | undefined };

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** One of the protocol's codecs. Use {@link getCodec} to get one by name. */
export interface Codec {
  /** Its name, as in `POLYGLOT_CODEC` and the handshake. */
  readonly name: CodecName;
  /** The payload holding `value` (without framing).
   * @throws {EncodeError} when the value is outside the protocol's data model. */
  encode(value: unknown): Uint8Array;
  /** The value in one frame's payload.
   * @throws {DecodeError} */
  decode(payload: Uint8Array): Value;
  /** The bytes that carry `payload` on the wire. */
  frame(payload: Uint8Array): Uint8Array;
  /** A new decoder that splits a stream of this codec's frames. */
  frameDecoder(limit?: number): FrameDecoder;
  /** The `id` at the start of a payload, if readable (for frames that do not decode). */
  idFromHead(head: Uint8Array): Id | undefined;
}

const NEWLINE = Buffer.from("\n");

/** Newline-delimited UTF-8 JSON; binary as `{"$bytes": "<base64>"}`. */
export const jsonCodec: Codec = {
  name: "json",
  encode: (value) => Buffer.from(encodeJson(value), "utf8"),
  decode(payload) {
    let text: string;
    try {
      text = utf8.decode(payload);
    } catch {
      throw new DecodeError("frame is not valid JSON: it is not UTF-8");
    }
    return decodeJson(text);
  },
  frame: (payload) => Buffer.concat([payload, NEWLINE]),
  frameDecoder: (limit = DEFAULT_MAX_FRAME) => new JsonFrameDecoder(limit),
  idFromHead: (head) => jsonIdFromHead(head.subarray(0, HEAD_BYTES)),
};

/** Length-prefixed MessagePack; binary as `bin`. */
export const msgpackCodec: Codec = {
  name: "msgpack",
  encode: encodeMsgpack,
  decode: decodeMsgpack,
  frame(payload) {
    if (payload.length > 0xffffffff) {
      throw new EncodeError(`a MessagePack frame holds at most 4 GiB, not ${payload.length} bytes`);
    }
    const out = Buffer.allocUnsafe(4 + payload.length);
    out.writeUInt32BE(payload.length, 0);
    out.set(payload, 4);
    return out;
  },
  frameDecoder: (limit = DEFAULT_MAX_FRAME) => new MsgpackFrameDecoder(limit),
  idFromHead: (head) => msgpackIdFromHead(head.subarray(0, HEAD_BYTES)),
};

/** The codec called `name` (`"json"` or `"msgpack"`).
 * @throws {RangeError} for any other name. */
export function getCodec(name: string): Codec {
  if (name === "json") return jsonCodec;
  if (name === "msgpack") return msgpackCodec;
  throw new RangeError(`unknown codec ${JSON.stringify(name)}; the protocol knows ${CODECS.join(", ")}`);
}

// ------------------------------------------------------------------ frame decoders

/** Splits a byte stream of one codec into frames. See the module docs.
 *
 * The bytes of a frame not yet complete are kept as the chunks they arrived in and joined
 * once, when the frame is: a 64 MiB frame read 64 KiB at a time is copied once, not a
 * thousand times. */
export abstract class FrameDecoder {
  /** The chunks of the frame being read. */
  protected parts: Buffer[] = [];
  /** Their total size. */
  protected pending = 0;
  protected skipping = false;
  protected skipSize = 0;
  protected skipHead: Buffer[] = [];
  protected skipHeadLen = 0;

  constructor(
    /** The frame size limit in bytes. */
    readonly limit: number,
  ) {
    if (!(limit >= 1)) throw new RangeError(`frame limit must be at least 1 byte, got ${limit}`);
  }

  /** Takes the next bytes of the stream; returns the frames they completed, in order. */
  abstract feed(data: Uint8Array): FrameEvent[];

  /** At end of stream: `undefined` for a clean end, else how many bytes of a frame were
   * read when the stream ended inside it. */
  abstract finish(): number | undefined;

  protected keep(data: Buffer): void {
    if (data.length > 0) {
      this.parts.push(data);
      this.pending += data.length;
    }
  }

  /** The kept chunks and `tail` as one buffer. */
  protected joined(tail: Buffer): Buffer {
    if (this.parts.length === 0) return tail;
    const all = Buffer.concat([...this.parts, tail], this.pending + tail.length);
    this.parts = [];
    this.pending = 0;
    return all;
  }

  protected keepHead(data: Uint8Array): void {
    const room = HEAD_BYTES - this.skipHeadLen;
    if (room > 0 && data.length > 0) {
      const part = Buffer.from(data.subarray(0, room));
      this.skipHead.push(part);
      this.skipHeadLen += part.length;
    }
  }

  protected takeHead(): Buffer {
    const head = Buffer.concat(this.skipHead);
    this.skipHead = [];
    this.skipHeadLen = 0;
    return head;
  }
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Newline-delimited JSON frames; a `\r` before the `\n` is dropped, blank lines are
 * skipped (they carry nothing). */
export class JsonFrameDecoder extends FrameDecoder {
  /** Skipping: whether the last byte dropped was `\r`. */
  private lastCr = false;

  feed(input: Uint8Array): FrameEvent[] {
    const out: FrameEvent[] = [];
    let data = asBuffer(input);
    if (this.skipping) {
      data = this.continueSkip(data, out);
      if (this.skipping) return out;
    }
    let start = 0;
    for (;;) {
      const nl = data.indexOf(10, start);
      if (nl < 0) {
        this.keep(data.subarray(start));
        // One byte of slack: a trailing "\r" is not part of the frame.
        if (this.pending > this.limit + 1) this.startSkip();
        return out;
      }
      const line = this.joined(data.subarray(start, nl));
      const size = line.length > 0 && line[line.length - 1] === 0x0d ? line.length - 1 : line.length;
      if (size > this.limit) {
        out.push({ tooLarge: true, size, id: jsonIdFromHead(line.subarray(0, Math.min(size, HEAD_BYTES))) });
      } else if (size > 0) {
        out.push({ frame: line.subarray(0, size) });
      }
      start = nl + 1;
    }
  }

  finish(): number | undefined {
    if (this.skipping) return this.skipSize;
    return this.pending > 0 ? this.pending : undefined;
  }

  private startSkip(): void {
    for (const p of this.parts) this.keepHead(p);
    const last = this.parts[this.parts.length - 1];
    this.lastCr = last !== undefined && last[last.length - 1] === 0x0d;
    this.skipping = true;
    this.skipSize = this.pending;
    this.parts = [];
    this.pending = 0;
  }

  private continueSkip(data: Buffer, out: FrameEvent[]): Buffer {
    const nl = data.indexOf(10);
    if (nl < 0) {
      this.keepHead(data);
      this.skipSize += data.length;
      if (data.length > 0) this.lastCr = data[data.length - 1] === 0x0d;
      return Buffer.alloc(0);
    }
    this.keepHead(data.subarray(0, nl));
    let size = this.skipSize + nl;
    if ((nl > 0 && data[nl - 1] === 0x0d) || (nl === 0 && this.lastCr)) size -= 1;
    out.push({ tooLarge: true, size, id: jsonIdFromHead(this.takeHead()) });
    this.skipping = false;
    return data.subarray(nl + 1);
  }
}

/** Length-prefixed MessagePack frames: a 4-byte big-endian length, then the payload. */
export class MsgpackFrameDecoder extends FrameDecoder {
  /** The size of the frame whose payload is being read; `undefined` while reading a
   * length prefix. */
  private need: number | undefined;
  /** Bytes of an oversize frame still to drop. */
  private remaining = 0;

  feed(input: Uint8Array): FrameEvent[] {
    const out: FrameEvent[] = [];
    let data = asBuffer(input);
    while (data.length > 0) {
      if (this.skipping) {
        const take = Math.min(this.remaining, data.length);
        this.keepHead(data.subarray(0, take));
        this.remaining -= take;
        data = data.subarray(take);
        if (this.remaining > 0) break;
        out.push({ tooLarge: true, size: this.skipSize, id: msgpackIdFromHead(this.takeHead()) });
        this.skipping = false;
        continue;
      }
      if (this.need === undefined) {
        if (this.pending + data.length < 4) {
          this.keep(data);
          break;
        }
        const used = 4 - this.pending;
        const n = this.joined(data.subarray(0, used)).readUInt32BE(0);
        data = data.subarray(used);
        if (n > this.limit) {
          // Drop it without buffering: what is already here goes through the skipping
          // branch above.
          this.skipping = true;
          this.skipSize = this.remaining = n;
          continue;
        }
        this.need = n;
      }
      const want = this.need - this.pending;
      if (data.length < want) {
        this.keep(data);
        break;
      }
      out.push({ frame: this.joined(data.subarray(0, want)) });
      this.need = undefined;
      data = data.subarray(want);
    }
    return out;
  }

  finish(): number | undefined {
    if (this.skipping) return this.skipSize - this.remaining;
    if (this.need !== undefined) return 4 + this.pending;
    return this.pending > 0 ? this.pending : undefined;
  }
}

// ------------------------------------------------------------------ reading an id early

function isWs(c: number | undefined): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/** Reads the `id` from the first bytes of a JSON frame, if the frame starts with it (as
 * every writer of this protocol does): `{"id": <integer or string>, ...`. */
export function jsonIdFromHead(head: Uint8Array): Id | undefined {
  const n = head.length;
  let i = 0;
  const skip = (): void => {
    while (i < n && isWs(head[i])) i++;
  };
  skip();
  if (head[i] !== 0x7b) return undefined;
  i++;
  skip();
  if (Buffer.from(head.subarray(i, i + 4)).toString("latin1") !== '"id"') return undefined;
  i += 4;
  skip();
  if (head[i] !== 0x3a) return undefined;
  i++;
  skip();
  const start = i;
  if (head[i] === 0x22) {
    i++;
    while (i < n) {
      const c = head[i];
      if (c === 0x5c) i += 2;
      else if (c === 0x22) {
        try {
          const v: unknown = JSON.parse(utf8.decode(head.subarray(start, i + 1)));
          return typeof v === "string" ? v : undefined;
        } catch {
          return undefined;
        }
      } else i++;
    }
    return undefined;
  }
  while (i < n && (head[i] === 0x2d || ((head[i] as number) >= 0x30 && (head[i] as number) <= 0x39))) i++;
  // The number must end inside the head, or it may have been cut.
  const end = head[i];
  if (i >= n || i === start || !(end === 0x2c || end === 0x7d || isWs(end))) return undefined;
  const text = Buffer.from(head.subarray(start, i)).toString("latin1");
  if (!/^-?(?:0|[1-9]\d*)$/.test(text)) return undefined;
  const v = BigInt(text);
  return v >= INT_MIN && v <= UINT_MAX ? intValue(v) : undefined;
}

/** Reads the `id` from the first bytes of a MessagePack frame, if the frame is a map whose
 * first key is `id` holding an integer or a string. */
export function msgpackIdFromHead(head: Uint8Array): Id | undefined {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const str = (at: number): [string, number] | undefined => {
    const t = head[at];
    if (t === undefined) return undefined;
    let len: number;
    let from: number;
    if (t >= 0xa0 && t <= 0xbf) [len, from] = [t - 0xa0, at + 1];
    else if (t === 0xd9) [len, from] = [view.getUint8(at + 1), at + 2];
    else if (t === 0xda) [len, from] = [view.getUint16(at + 1), at + 3];
    else if (t === 0xdb) [len, from] = [view.getUint32(at + 1), at + 5];
    else return undefined;
    if (from + len > head.length) return undefined;
    return [utf8.decode(head.subarray(from, from + len)), from + len];
  };
  try {
    const b0 = head[0];
    let i: number;
    if (b0 === undefined) return undefined;
    if (b0 >= 0x81 && b0 <= 0x8f) i = 1;
    else if (b0 === 0xde && view.getUint16(1) > 0) i = 3;
    else if (b0 === 0xdf && view.getUint32(1) > 0) i = 5;
    else return undefined;
    const key = str(i);
    if (key === undefined || key[0] !== "id") return undefined;
    i = key[1];
    const t = head[i];
    if (t === undefined) return undefined;
    if (t <= 0x7f) return t;
    if (t >= 0xe0) return t - 0x100;
    switch (t) {
      case 0xcc:
        return view.getUint8(i + 1);
      case 0xcd:
        return view.getUint16(i + 1);
      case 0xce:
        return view.getUint32(i + 1);
      case 0xcf:
        return intValue(view.getBigUint64(i + 1));
      case 0xd0:
        return view.getInt8(i + 1);
      case 0xd1:
        return view.getInt16(i + 1);
      case 0xd2:
        return view.getInt32(i + 1);
      case 0xd3:
        return intValue(view.getBigInt64(i + 1));
      default:
        return str(i)?.[0];
    }
  } catch {
    // Cut off inside the id (a RangeError from the view), or not UTF-8.
    return undefined;
  }
}
