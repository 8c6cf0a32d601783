/**
 * The MessagePack codec's values (docs/protocol.md, sections 3 and 7): maps with string
 * keys, binary as `bin`, integers in the smallest form that holds them.
 *
 * Written here rather than taken from `@msgpack/msgpack`: the protocol needs whole floats
 * kept apart from integers (`cb 3ff0...` must read back as `1.0`, not `1`), 64-bit
 * integers as `bigint` only beyond 2^53, every integer written in its smallest form
 * (positive ones unsigned, as the other SDKs write them), and extension types refused;
 * that library reads floats as plain numbers and writes `bigint`s always in 9 bytes, so it
 * would need a second pass over every value anyway. This file is the whole codec, with
 * no dependency.
 */

import { DecodeError, EncodeError } from "./errors.js";
import { Float, INT_MIN, UINT_MAX, type Value, type ValueMap, badValue, floatValue, intValue, isMap, setKey, typeName } from "./values.js";
import { MAX_DEPTH, locate } from "./json.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The first buffer an encoder allocates; it doubles as needed. */
const INITIAL_BUFFER = 256;

/** Strings of at most this many UTF-16 units are written without measuring them first:
 * they take at most 30 bytes, a fixstr. */
const SHORT_FIXSTR = 10;

/** Strings shorter than this are decoded byte by byte when they are ASCII: cheaper than a
 * call into `TextDecoder`. */
const SHORT_STRING = 32;

/** Writes `v` as one MessagePack value.
 *
 * @throws {EncodeError} naming the path of a value outside the data model. */
export function encodeMsgpack(v: unknown): Uint8Array {
  const w = new Writer();
  try {
    w.value(v);
  } catch (e) {
    if (e instanceof EncodeError) throw locate(v, "$") ?? e;
    if (e instanceof RangeError) throw new EncodeError("the value is nested too deeply (or holds itself) to send");
    throw e;
  }
  return w.done();
}

/** Reads one MessagePack value that fills `payload` exactly.
 *
 * @throws {DecodeError} saying what is wrong. */
export function decodeMsgpack(payload: Uint8Array): Value {
  const r = new Reader(payload);
  let v: Value;
  try {
    v = r.value(0);
  } catch (e) {
    if (e instanceof DecodeError) throw new DecodeError(`frame is not valid MessagePack: ${e.message}`);
    if (e instanceof RangeError) throw new DecodeError("frame is not valid MessagePack: it ends inside a value");
    throw e;
  }
  if (r.pos !== payload.length) {
    throw new DecodeError(`frame is not valid MessagePack: ${payload.length - r.pos} bytes after the value`);
  }
  return v;
}

class Writer {
  private buf = Buffer.allocUnsafe(INITIAL_BUFFER);
  private pos = 0;

  done(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private u8(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  private head(tag: number, n: number, bytes: 1 | 2 | 4): void {
    this.room(1 + bytes);
    this.buf[this.pos++] = tag;
    if (bytes === 1) this.buf.writeUInt8(n, this.pos);
    else if (bytes === 2) this.buf.writeUInt16BE(n, this.pos);
    else this.buf.writeUInt32BE(n, this.pos);
    this.pos += bytes;
  }

  value(v: unknown): void {
    switch (typeof v) {
      case "string":
        return this.string(v);
      case "number":
        if (Number.isSafeInteger(v)) return this.int(v);
        if (!Number.isFinite(v)) throw badValue(v, "$");
        return this.float(v);
      case "boolean":
        return this.u8(v ? 0xc3 : 0xc2);
      case "bigint":
        if (v < INT_MIN || v > UINT_MAX) throw badValue(v, "$");
        if (v >= -9007199254740991n && v <= 9007199254740991n) return this.int(Number(v));
        this.room(9);
        this.buf[this.pos++] = v < 0n ? 0xd3 : 0xcf;
        if (v < 0n) this.buf.writeBigInt64BE(v, this.pos);
        else this.buf.writeBigUInt64BE(v, this.pos);
        this.pos += 8;
        return;
      case "object": {
        if (v === null) return this.u8(0xc0);
        if (Array.isArray(v)) {
          const n = v.length;
          if (n < 16) this.u8(0x90 | n);
          else if (n < 0x10000) this.head(0xdc, n, 2);
          else this.head(0xdd, n, 4);
          for (let i = 0; i < n; i++) this.value(v[i]);
          return;
        }
        if (v instanceof Uint8Array) {
          const n = v.length;
          if (n < 0x100) this.head(0xc4, n, 1);
          else if (n < 0x10000) this.head(0xc5, n, 2);
          else if (n <= 0xffffffff) this.head(0xc6, n, 4);
          else throw new EncodeError(`binary of ${n} bytes is over MessagePack's 4 GiB`);
          this.room(n);
          this.buf.set(v, this.pos);
          this.pos += n;
          return;
        }
        if (v instanceof Float) {
          if (!Number.isFinite(v.value)) throw badValue(v.value, "$");
          return this.float(v.value);
        }
        if (isMap(v)) {
          let n = 0;
          for (const k in v) if (v[k] !== undefined && Object.prototype.hasOwnProperty.call(v, k)) n++;
          if (n < 16) this.u8(0x80 | n);
          else if (n < 0x10000) this.head(0xde, n, 2);
          else this.head(0xdf, n, 4);
          for (const k in v) {
            const x = v[k];
            if (x === undefined || !Object.prototype.hasOwnProperty.call(v, k)) continue;
            this.string(k);
            this.value(x);
          }
          return;
        }
        throw badValue(v, "$");
      }
      default:
        throw badValue(v, "$");
    }
  }

  private int(n: number): void {
    if (n >= 0) {
      if (n < 0x80) return this.u8(n);
      if (n < 0x100) return this.head(0xcc, n, 1);
      if (n < 0x10000) return this.head(0xcd, n, 2);
      if (n < 0x100000000) return this.head(0xce, n, 4);
      this.room(9);
      this.buf[this.pos++] = 0xcf;
      this.buf.writeBigUInt64BE(BigInt(n), this.pos);
      this.pos += 8;
      return;
    }
    if (n >= -32) return this.u8(n & 0xff);
    this.room(9);
    if (n >= -0x80) {
      this.buf[this.pos++] = 0xd0;
      this.buf.writeInt8(n, this.pos);
      this.pos += 1;
    } else if (n >= -0x8000) {
      this.buf[this.pos++] = 0xd1;
      this.buf.writeInt16BE(n, this.pos);
      this.pos += 2;
    } else if (n >= -0x80000000) {
      this.buf[this.pos++] = 0xd2;
      this.buf.writeInt32BE(n, this.pos);
      this.pos += 4;
    } else {
      this.buf[this.pos++] = 0xd3;
      this.buf.writeBigInt64BE(BigInt(n), this.pos);
      this.pos += 8;
    }
  }

  private float(x: number): void {
    this.room(9);
    this.buf[this.pos++] = 0xcb;
    this.buf.writeDoubleBE(x, this.pos);
    this.pos += 8;
  }

  private string(s: string): void {
    if (!s.isWellFormed()) {
      throw new EncodeError("a string holds a lone UTF-16 surrogate, which UTF-8 cannot carry");
    }
    if (s.length <= SHORT_FIXSTR) {
      // At most 3 bytes per UTF-16 unit: a fixstr whatever the text; its size is known
      // once written.
      this.room(1 + 3 * SHORT_FIXSTR);
      const at = this.pos++;
      const n = this.buf.write(s, this.pos, "utf8");
      this.pos += n;
      this.buf[at] = 0xa0 | n;
      return;
    }
    const n = Buffer.byteLength(s, "utf8");
    if (n < 32) this.u8(0xa0 | n);
    else if (n < 0x100) this.head(0xd9, n, 1);
    else if (n < 0x10000) this.head(0xda, n, 2);
    else this.head(0xdb, n, 4);
    this.room(n);
    this.pos += this.buf.write(s, this.pos, "utf8");
  }
}

class Reader {
  pos = 0;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;

  constructor(payload: Uint8Array) {
    this.bytes = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
    this.view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  }

  private take(n: number): number {
    const at = this.pos;
    if (at + n > this.bytes.length) throw new DecodeError("it ends inside a value");
    this.pos = at + n;
    return at;
  }

  value(depth: number): Value {
    if (depth > MAX_DEPTH) throw new DecodeError(`nested deeper than ${MAX_DEPTH} levels`);
    const t = this.bytes[this.take(1)] as number;
    if (t < 0x80) return t;
    if (t >= 0xe0) return t - 0x100;
    if (t >= 0xa0 && t <= 0xbf) return this.str(t & 0x1f);
    if (t >= 0x90 && t <= 0x9f) return this.array(t & 0x0f, depth);
    if (t >= 0x80 && t <= 0x8f) return this.map(t & 0x0f, depth);
    const v = this.view;
    switch (t) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.bin(v.getUint8(this.take(1)));
      case 0xc5:
        return this.bin(v.getUint16(this.take(2)));
      case 0xc6:
        return this.bin(v.getUint32(this.take(4)));
      case 0xca:
        return floatValue(v.getFloat32(this.take(4)));
      case 0xcb:
        return floatValue(v.getFloat64(this.take(8)));
      case 0xcc:
        return v.getUint8(this.take(1));
      case 0xcd:
        return v.getUint16(this.take(2));
      case 0xce:
        return v.getUint32(this.take(4));
      case 0xcf:
        return intValue(v.getBigUint64(this.take(8)));
      case 0xd0:
        return v.getInt8(this.take(1));
      case 0xd1:
        return v.getInt16(this.take(2));
      case 0xd2:
        return v.getInt32(this.take(4));
      case 0xd3:
        return intValue(v.getBigInt64(this.take(8)));
      case 0xd9:
        return this.str(v.getUint8(this.take(1)));
      case 0xda:
        return this.str(v.getUint16(this.take(2)));
      case 0xdb:
        return this.str(v.getUint32(this.take(4)));
      case 0xdc:
        return this.array(v.getUint16(this.take(2)), depth);
      case 0xdd:
        return this.array(v.getUint32(this.take(4)), depth);
      case 0xde:
        return this.map(v.getUint16(this.take(2)), depth);
      case 0xdf:
        return this.map(v.getUint32(this.take(4)), depth);
      case 0xc7:
      case 0xc8:
      case 0xc9:
      case 0xd4:
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8:
        throw new DecodeError(`extension types (0x${t.toString(16)}) are not protocol values`);
      default:
        throw new DecodeError(`0x${t.toString(16)} is not a MessagePack type`);
    }
  }

  private str(n: number): string {
    const at = this.take(n);
    const b = this.bytes;
    if (n < SHORT_STRING) {
      let s = "";
      for (let i = at; i < at + n; i++) {
        const c = b[i] as number;
        if (c >= 0x80) return this.utf8(at, n);
        s += String.fromCharCode(c);
      }
      return s;
    }
    return this.utf8(at, n);
  }

  private utf8(at: number, n: number): string {
    try {
      return utf8.decode(this.bytes.subarray(at, at + n));
    } catch {
      throw new DecodeError("a string is not valid UTF-8");
    }
  }

  private bin(n: number): Uint8Array {
    const at = this.take(n);
    return this.bytes.slice(at, at + n);
  }

  private array(n: number, depth: number): Value[] {
    // Each element takes at least one byte: a length past the end is a lie, not a reason
    // to allocate.
    if (n > this.bytes.length - this.pos) throw new DecodeError("it ends inside an array");
    const out = new Array<Value>(n);
    for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
    return out;
  }

  private map(n: number, depth: number): ValueMap {
    if (n * 2 > this.bytes.length - this.pos) throw new DecodeError("it ends inside a map");
    const out: ValueMap = {};
    for (let i = 0; i < n; i++) {
      const k = this.value(depth + 1);
      if (typeof k !== "string") throw new DecodeError(`map key ${typeName(k)} is not a string`);
      setKey(out, k, this.value(depth + 1));
    }
    return out;
  }
}
