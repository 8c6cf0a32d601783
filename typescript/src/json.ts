/**
 * The JSON codec's values (docs/protocol.md, sections 3 and 7): UTF-8 JSON text, binary as
 * `{"$bytes": "<base64>"}`, integers and floats told apart.
 *
 * `JSON.parse` reads every number as a double: `1.0` would come back as the integer `1`
 * and `18446744073709551615` would lose its last digits. A text with no such number (no
 * digit followed by `.`, `e` or `E`, no run of 16 digits) goes through `JSON.parse`,
 * V8's fast native parser, and is exact; any other goes through {@link Parser}, which
 * keeps whole floats as `Float` and big integers as `bigint`. A string that merely
 * contains `1.5` takes the exact path too: slower, never wrong.
 */

import { DecodeError, EncodeError } from "./errors.js";
import {
  BYTES_KEY,
  Float,
  INT_MIN,
  UINT_MAX,
  type Value,
  type ValueMap,
  badValue,
  decodeBase64,
  encodeBase64,
  floatValue,
  intValue,
  isBytesObject,
  isMap,
  setKey,
} from "./values.js";

/** Nesting deeper than this is refused when reading: far more than any real message, few
 * enough that the recursive reader never runs out of stack. */
export const MAX_DEPTH = 1000;

/** A number `JSON.parse` could read wrong: a float (which may be whole) or a long integer. */
const NEEDS_EXACT = /\d[.eE]|\d{16}/;
/** A text that may hold a `$bytes` key (also written with escapes). */
const MAY_HOLD_BYTES = /bytes|\\u/;
/** A JSON number at the reader's position. */
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;

/** Writes `v` as compact JSON text. Object properties that are `undefined` are left out,
 * as `JSON.stringify` does.
 *
 * @throws {EncodeError} naming the path of a value outside the data model. */
export function encodeJson(v: unknown): string {
  try {
    return write(v);
  } catch (e) {
    if (e instanceof EncodeError) throw locate(v, "$") ?? e;
    if (e instanceof RangeError) throw new EncodeError("the value is nested too deeply (or holds itself) to send");
    throw e;
  }
}

/** Reads JSON text into a value.
 *
 * @throws {DecodeError} saying what is wrong and where. */
export function decodeJson(text: string): Value {
  let v: unknown;
  if (!NEEDS_EXACT.test(text)) {
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new DecodeError(`frame is not valid JSON: ${(e as Error).message}`);
    }
    if (MAY_HOLD_BYTES.test(text)) {
      try {
        v = reviveBytes(v);
      } catch (e) {
        if (e instanceof RangeError) throw new DecodeError("frame is not valid JSON: nested too deeply");
        throw e;
      }
    }
    return v as Value;
  }
  return new Parser(text).document();
}

/** A finite float as JSON text that reads back as a float: `1.0`, `-0.0`, `1e+21`, `0.5`. */
export function formatFloat(x: number): string {
  if (Object.is(x, -0)) return "-0.0";
  const s = String(x);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

function write(v: unknown): string {
  switch (typeof v) {
    case "string":
      return JSON.stringify(v);
    case "number":
      if (Number.isSafeInteger(v)) return String(v);
      if (Number.isFinite(v)) return formatFloat(v);
      throw badValue(v, "$");
    case "boolean":
      return v ? "true" : "false";
    case "bigint":
      if (v < INT_MIN || v > UINT_MAX) throw badValue(v, "$");
      return v.toString();
    case "object": {
      if (v === null) return "null";
      if (Array.isArray(v)) {
        let s = "[";
        for (let i = 0; i < v.length; i++) {
          if (i > 0) s += ",";
          s += write(v[i]);
        }
        return `${s}]`;
      }
      if (v instanceof Uint8Array) return `{"${BYTES_KEY}":"${encodeBase64(v)}"}`;
      if (v instanceof Float) {
        if (!Number.isFinite(v.value)) throw badValue(v.value, "$");
        return formatFloat(v.value);
      }
      if (isMap(v)) {
        let s = "{";
        let first = true;
        for (const k in v) {
          const x = v[k];
          if (x === undefined || !Object.prototype.hasOwnProperty.call(v, k)) continue;
          s += `${first ? "" : ","}${JSON.stringify(k)}:${write(x)}`;
          first = false;
        }
        return `${s}}`;
      }
      throw badValue(v, "$");
    }
    default:
      throw badValue(v, "$");
  }
}

/** The error for the first value of `v` outside the data model, with its path; `undefined`
 * when there is none. Only run once encoding failed, to name the path. */
export function locate(v: unknown, path: string): EncodeError | undefined {
  switch (typeof v) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(v) ? undefined : badValue(v, path);
    case "bigint":
      return v < INT_MIN || v > UINT_MAX ? badValue(v, path) : undefined;
    case "object": {
      if (v === null || v instanceof Uint8Array) return undefined;
      if (v instanceof Float) return Number.isFinite(v.value) ? undefined : badValue(v.value, path);
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const e = locate(v[i], `${path}[${i}]`);
          if (e) return e;
        }
        return undefined;
      }
      if (isMap(v)) {
        for (const [k, x] of Object.entries(v)) {
          if (x === undefined) continue;
          const e = locate(x, `${path}.${k}`);
          if (e) return e;
        }
        return undefined;
      }
      return badValue(v, path);
    }
    default:
      return badValue(v, path);
  }
}

/** Replaces, in place, every `{"$bytes": ...}` object of a `JSON.parse` result with its
 * bytes; returns the (possibly replaced) root. */
function reviveBytes(v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = reviveBytes(v[i]);
    return v;
  }
  const obj = v as Record<string, unknown>;
  if (isBytesObject(obj)) return decodeBase64(obj[BYTES_KEY]);
  for (const k of Object.keys(obj)) {
    const x = obj[k];
    if (x !== null && typeof x === "object") {
      const r = reviveBytes(x);
      if (r !== x) setKey(obj as ValueMap, k, r as Value);
    }
  }
  return obj;
}

/** The exact reader: a recursive-descent JSON parser that keeps the protocol's integers and
 * floats apart. Strings with escapes are handed to `JSON.parse`, one string at a time. */
export class Parser {
  private i = 0;

  constructor(private readonly s: string) {}

  /** The one value of the text, with nothing but whitespace after it. */
  document(): Value {
    this.ws();
    const v = this.value(0);
    this.ws();
    if (this.i < this.s.length) this.fail("unexpected text after the value");
    return v;
  }

  private fail(what: string): never {
    const at = this.i < this.s.length ? `at position ${this.i}` : "at the end";
    throw new DecodeError(`frame is not valid JSON: ${what} ${at}`);
  }

  private ws(): void {
    const s = this.s;
    let i = this.i;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.i = i;
  }

  private value(depth: number): Value {
    if (depth > MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels`);
    const c = this.s.charCodeAt(this.i);
    switch (c) {
      case 0x7b: // {
        return this.object(depth);
      case 0x5b: // [
        return this.array(depth);
      case 0x22: // "
        return this.string();
      case 0x74: // t
        return this.literal("true", true);
      case 0x66: // f
        return this.literal("false", false);
      case 0x6e: // n
        return this.literal("null", null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
        return this.fail(Number.isNaN(c) ? "expected a value" : `unexpected character ${JSON.stringify(this.s[this.i])}`);
    }
  }

  private literal<T extends Value>(word: string, v: T): T {
    if (!this.s.startsWith(word, this.i)) this.fail("unexpected character");
    this.i += word.length;
    return v;
  }

  private number(): Value {
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.s);
    if (!m) return this.fail("invalid number");
    const text = m[0];
    this.i += text.length;
    if (m[1] !== undefined || m[2] !== undefined) {
      const x = Number(text);
      if (!Number.isFinite(x)) throw new DecodeError(`frame is not valid JSON: number ${text} is out of range`);
      return floatValue(x);
    }
    if (text.length < 16) return Number(text);
    const n = BigInt(text);
    if (n < INT_MIN || n > UINT_MAX) {
      throw new DecodeError(`frame is not valid JSON: integer ${text} is outside the 64-bit range`);
    }
    return intValue(n);
  }

  private string(): string {
    const s = this.s;
    const start = this.i;
    let i = start + 1;
    let escaped = false;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x22) break;
      if (c === 0x5c) {
        escaped = true;
        i += 2;
        continue;
      }
      if (Number.isNaN(c)) {
        this.i = i;
        this.fail("unterminated string");
      }
      if (c < 0x20) {
        this.i = i;
        this.fail("control character in a string");
      }
      i++;
    }
    this.i = i + 1;
    if (!escaped) return s.slice(start + 1, i);
    try {
      return JSON.parse(s.slice(start, i + 1)) as string;
    } catch (e) {
      this.i = start;
      return this.fail(`invalid string escape (${(e as Error).message})`);
    }
  }

  private array(depth: number): Value[] {
    this.i++;
    const out: Value[] = [];
    this.ws();
    if (this.s.charCodeAt(this.i) === 0x5d) {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      out.push(this.value(depth + 1));
      this.ws();
      const c = this.s.charCodeAt(this.i++);
      if (c === 0x2c) continue;
      if (c === 0x5d) return out;
      this.i--;
      this.fail("expected ',' or ']'");
    }
  }

  private object(depth: number): Value {
    this.i++;
    const out: ValueMap = {};
    this.ws();
    if (this.s.charCodeAt(this.i) === 0x7d) {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s.charCodeAt(this.i) !== 0x22) this.fail("expected a string key");
      const key = this.string();
      this.ws();
      if (this.s.charCodeAt(this.i++) !== 0x3a) {
        this.i--;
        this.fail("expected ':'");
      }
      this.ws();
      setKey(out, key, this.value(depth + 1));
      this.ws();
      const c = this.s.charCodeAt(this.i++);
      if (c === 0x2c) continue;
      if (c === 0x7d) break;
      this.i--;
      this.fail("expected ',' or '}'");
    }
    if (isBytesObject(out)) return decodeBase64(out[BYTES_KEY]);
    return out;
  }
}
