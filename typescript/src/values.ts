/**
 * Protocol values in JavaScript, and their JSON form (docs/protocol.md, section 7).
 *
 * The protocol's data model has integers (signed and unsigned 64-bit) apart from floats,
 * and binary apart from strings; JavaScript has one `number`. So:
 *
 * - an integer arrives as a `number` when it is a safe integer (|n| < 2^53), else as a
 *   `bigint`; a `number` that is a safe integer is sent as an integer, a `bigint` (within
 *   the 64-bit range) as an integer too;
 * - a float arrives as a `number` when it has a fractional part, and as a {@link Float}
 *   when its value is whole (`1.0`), so that an echo sends `1.0` back, not `1`. A
 *   `number` that is not a safe integer (`1.5`, `1e300`) is sent as a float, and so is a
 *   `Float`: return `new Float(2)` to send a whole number as a float;
 * - binary is a `Uint8Array` (a `Buffer` is one); on the JSON wire it is the object
 *   `{"$bytes": "<standard base64, padded>"}`;
 * - a map is a plain object with string keys, an array an `Array`.
 *
 * The "JSON form" of a value is the value with every `Uint8Array` written as
 * `{"$bytes": ...}` (the form the test vectors use).
 */

import { DecodeError, EncodeError } from "./errors.js";

/** A protocol value. See the module docs for how integers, floats and binary map. */
export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Float
  | Value[]
  | ValueMap;

/** A protocol map: string keys to values. */
export interface ValueMap {
  [key: string]: Value;
}

/**
 * A float whose value is whole (`1.0`, `-0.0`, `1e300`): JavaScript cannot tell it from an
 * integer by its `number`, the protocol can. Arithmetic works on it through `valueOf`
 * (`f * 2`), and {@link toNumber} or `Number(f)` gives the number.
 */
export class Float {
  constructor(
    /** The number. */
    readonly value: number,
  ) {}

  /** The number, so that `+f` and `f * 2` work. */
  valueOf(): number {
    return this.value;
  }

  /** The number's text, as `String(number)` writes it. */
  toString(): string {
    return String(this.value);
  }
}

/** The key of the JSON form of binary data. */
export const BYTES_KEY = "$bytes";

/** The smallest integer the protocol carries (signed 64-bit). */
export const INT_MIN = -(2n ** 63n);

/** The largest integer the protocol carries (unsigned 64-bit). */
export const UINT_MAX = 2n ** 64n - 1n;

/** The number in a `number`, `bigint` or {@link Float} (`undefined` for anything else). */
export function toNumber(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (v instanceof Float) return v.value;
  return undefined;
}

/** Whether `v` is a protocol integer: a safe-integer `number`, or a `bigint` in range. */
export function isInteger(v: unknown): v is number | bigint {
  if (typeof v === "number") return Number.isSafeInteger(v);
  if (typeof v === "bigint") return v >= INT_MIN && v <= UINT_MAX;
  return false;
}

/** Whether `v` is a plain object: what the protocol carries as a map. */
export function isMap(v: unknown): v is ValueMap {
  if (v === null || typeof v !== "object") return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * The protocol's name for the type of `v`, for error messages: `null`, `boolean`,
 * `integer`, `float`, `string`, `binary`, `array`, `object`, or the JavaScript type of
 * anything else.
 */
export function typeName(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  switch (typeof v) {
    case "boolean":
      return "boolean";
    case "bigint":
      return "integer";
    case "number":
      return Number.isSafeInteger(v) ? "integer" : "float";
    case "string":
      return "string";
    case "object":
      if (v instanceof Float) return "float";
      if (v instanceof Uint8Array) return "binary";
      if (Array.isArray(v)) return "array";
      if (isMap(v)) return "object";
      return (v as object).constructor?.name ?? "object";
    default:
      return typeof v;
  }
}

/** A `number` for an integer that fits one exactly, else a `bigint`. */
export function intValue(n: bigint): number | bigint {
  return n >= -9007199254740991n && n <= 9007199254740991n ? Number(n) : n;
}

/** A float as the protocol's data model keeps it: a whole value as a {@link Float}. */
export function floatValue(x: number): number | Float {
  return Number.isInteger(x) || Object.is(x, -0) ? new Float(x) : x;
}

/**
 * Decodes the value of a `$bytes` key: standard base64 (RFC 4648) with padding. Like the
 * other SDKs, refuses what is not canonical (characters outside the alphabet, missing
 * padding, non-zero bits before the padding).
 *
 * @throws {DecodeError} naming `$bytes`.
 */
export function decodeBase64(text: unknown): Uint8Array {
  if (typeof text !== "string") {
    throw new DecodeError(`invalid ${BYTES_KEY}: expected a base64 string, got ${typeName(text)}`);
  }
  const data = Buffer.from(text, "base64");
  // Node's decoder skips what it does not understand; encoding back shows it.
  if (data.toString("base64") !== text) {
    throw new DecodeError(`invalid ${BYTES_KEY}: not canonical padded base64`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** The standard padded base64 text of `data`. */
export function encodeBase64(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");
}

/** Whether a decoded JSON object is the JSON form of binary (exactly one key, `$bytes`). */
export function isBytesObject(obj: object): boolean {
  let n = 0;
  for (const k in obj) {
    if (!Object.prototype.hasOwnProperty.call(obj, k)) continue;
    if (k !== BYTES_KEY || ++n > 1) return false;
  }
  return n === 1;
}

/** Sets `obj[key] = value` as an own property, also for the key `__proto__`. */
export function setKey(obj: ValueMap, key: string, value: Value): void {
  if (key === "__proto__") {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

/**
 * A value in the JSON form (as `JSON.parse` gives it) turned into a protocol value: every
 * `{"$bytes": ...}` object becomes a `Uint8Array`. Numbers stay as `JSON.parse` read them.
 *
 * @throws {DecodeError} for a `$bytes` object whose value is not valid base64.
 */
export function fromJsonForm(v: unknown): Value {
  if (Array.isArray(v)) return v.map(fromJsonForm);
  if (v !== null && typeof v === "object" && !(v instanceof Uint8Array) && !(v instanceof Float)) {
    if (isBytesObject(v)) return decodeBase64((v as Record<string, unknown>)[BYTES_KEY]);
    const out: ValueMap = {};
    for (const [k, x] of Object.entries(v)) setKey(out, k, fromJsonForm(x));
    return out;
  }
  return v as Value;
}

/** A protocol value in its JSON form: every `Uint8Array` becomes `{"$bytes": ...}`. */
export function toJsonForm(v: Value): unknown {
  if (v instanceof Uint8Array) return { [BYTES_KEY]: encodeBase64(v) };
  if (Array.isArray(v)) return v.map(toJsonForm);
  if (isMap(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === "__proto__") {
        Object.defineProperty(out, k, { value: toJsonForm(x), enumerable: true, writable: true, configurable: true });
      } else {
        out[k] = toJsonForm(x);
      }
    }
    return out;
  }
  return v;
}

/**
 * Equality of protocol values that tells `1` from `1.0` (a {@link Float}) and binary
 * from strings, compares `bigint`s and `number`s by value, and maps by their keys.
 */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Float || b instanceof Float) {
    return a instanceof Float && b instanceof Float && Object.is(a.value, b.value);
  }
  if ((typeof a === "number" || typeof a === "bigint") && (typeof b === "number" || typeof b === "bigint")) {
    const ia = typeof a === "bigint" || Number.isSafeInteger(a);
    const ib = typeof b === "bigint" || Number.isSafeInteger(b);
    if (ia !== ib) return false;
    // eslint-disable-next-line eqeqeq
    return ia ? BigInt(a) === BigInt(b) : a === b;
  }
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return (
      a instanceof Uint8Array &&
      b instanceof Uint8Array &&
      a.length === b.length &&
      Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))
    );
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  }
  if (isMap(a) || isMap(b)) {
    if (!isMap(a) || !isMap(b)) return false;
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && sameValue(a[k], b[k]));
  }
  return a === b;
}

/** What is wrong with `v`, a value outside the protocol's data model found at `path`. */
export function describeBadValue(v: unknown, path: string): string {
  if (typeof v === "number") return `${path}: ${String(v)} is not a JSON number`;
  if (typeof v === "bigint") return `${path}: integer ${v} is outside the 64-bit range`;
  if (v === undefined) return `${path}: undefined is not a protocol value (use null)`;
  if (v instanceof Date) return `${path}: a Date is not a protocol value; send date.toISOString() or date.getTime()`;
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
    return `${path}: a ${typeName(v)} is not a protocol value; binary is a Uint8Array`;
  }
  if (v instanceof Map) return `${path}: a Map is not a protocol value; use a plain object (Object.fromEntries)`;
  return `${path}: a ${typeName(v)} is not a protocol value`;
}

/** The error for a value outside the data model, found at `path`. */
export function badValue(v: unknown, path: string): EncodeError {
  return new EncodeError(describeBadValue(v, path));
}
