/**
 * crypto-rust's TypeScript fallback: BLAKE3 and AES-256-GCM on Node.js, with the same
 * methods, params, results and error codes as the Rust `crypto` builtin
 * (crates/polyglot-native/README.md) and crypto-python.
 *
 * - `blake3(data, key?, context?, length = 32, raw = false)`: BLAKE3 (`@noble/hashes`,
 *   audited, no dependencies), plain, keyed (`key`, 32 bytes) or derive-key (`context`)
 *   mode, 1 byte to 1 MiB of output, as lowercase hex or as bytes with `raw`.
 * - `encrypt(data, key, aad?)`: AES-256-GCM (`node:crypto`, OpenSSL) into the sealed
 *   message `nonce(12) || ciphertext || tag(16)`, a fresh random nonce for every message.
 * - `decrypt(data, key, aad?)`: the plaintext of a sealed message; any wrong key, wrong
 *   `aad` or altered byte fails with `AUTHENTICATION_FAILED`.
 * - `deriveKey`: answered `NOT_SUPPORTED`, which sends the call on down the module's
 *   fallback chain (to crypto-python). Node 20 has no Argon2id, and a JavaScript one takes
 *   about 250 ms of this worker's only thread at the default 19 MiB, during which every
 *   other call and health check waits; a native implementation does it in a tenth of that.
 *
 * Params are named or positional (in the order above), or the first param alone. Keys
 * must be bytes: a string is refused, so hex or base64 text is never taken as the key.
 */

import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { setImmediate as yieldToLoop } from "node:timers/promises";

import { blake3 as blake3Hash } from "@noble/hashes/blake3.js";
import { ErrorCode, MethodError, type Value, bindParams, typeName } from "@polyglot/worker";

/** Calls at once: the methods are short, and large BLAKE3 inputs yield between chunks. */
export const maxConcurrency = 16;

/** `decrypt` failed: wrong key, wrong associated data, or an altered message. */
const AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED";
/** An output over a limit (`data.what`, `data.limit`, `data.actual`). */
const TOO_LARGE = "TOO_LARGE";
/** AES-256 and BLAKE3 keys: 32 bytes. */
const KEY_LEN = 32;
/** GCM's native 96-bit nonce, at the start of a sealed message. */
const NONCE_LEN = 12;
/** GCM's full 128-bit tag, at the end of a sealed message. */
const TAG_LEN = 16;
/** What a sealed message adds to its plaintext. */
const OVERHEAD = NONCE_LEN + TAG_LEN;
/** BLAKE3's standard output length. */
const DEFAULT_HASH_LENGTH = 32;
/** The longest `blake3` output: 1 MiB. Longer output is a keystream, not a hash. */
const MAX_HASH_LENGTH = 1 << 20;
/** Inputs are hashed in pieces of this size, the event loop taken back between pieces, so
 * a 64 MB hash (about two seconds in JavaScript) never holds up health checks. */
const HASH_PIECE = 1 << 20;

const utf8 = new TextDecoder("utf-8", { fatal: true });

// ---------------------------------------------------------------- params

function invalid(method: string, param: string, problem: string, data: Record<string, Value> = {}): MethodError {
  return new MethodError(ErrorCode.INVALID_PARAMS, `${method}: \`${param}\` ${problem}`, { param, ...data });
}

/** Bytes, or a string as its UTF-8. */
function bytesOrText(method: string, param: string, v: Value): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === "string") return Buffer.from(v, "utf8");
  throw invalid(method, param, `must be bytes or a string, not ${typeName(v)}`);
}

/** Bytes only: keys and sealed messages are never read from a string. */
function bytesOnly(method: string, param: string, v: Value): Uint8Array {
  if (v instanceof Uint8Array) return v;
  throw invalid(method, param, `must be bytes (in JSON, {"$bytes": "<base64>"}), not ${typeName(v)}`);
}

/** A string, or bytes that are valid UTF-8. */
function text(method: string, param: string, v: Value): string {
  if (typeof v === "string") return v;
  if (v instanceof Uint8Array) {
    try {
      return utf8.decode(v);
    } catch {
      throw invalid(method, param, "is not valid UTF-8");
    }
  }
  throw invalid(method, param, `must be a string, not ${typeName(v)}`);
}

/** An optional integer >= 0 (a boolean or a float is not one). */
function uint(method: string, param: string, v: Value | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if ((typeof v === "number" && Number.isSafeInteger(v) && v >= 0) || (typeof v === "bigint" && v >= 0n)) {
    return Number(v);
  }
  throw invalid(method, param, `must be an integer >= 0, not ${typeName(v)}`);
}

function bool(method: string, param: string, v: Value | undefined, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== "boolean") throw invalid(method, param, `must be a boolean, not ${typeName(v)}`);
  return v;
}

function checkKey(key: Uint8Array): Uint8Array {
  if (key.length !== KEY_LEN) {
    throw new MethodError(ErrorCode.INVALID_PARAMS, `\`key\` must be ${KEY_LEN} bytes, got ${key.length}`, {
      param: "key",
      expected: KEY_LEN,
      actual: key.length,
    });
  }
  return key;
}

function required<T>(method: string, param: string, v: T | undefined): T {
  if (v === undefined) throw invalid(method, param, "is required");
  return v;
}

// ---------------------------------------------------------------- methods

/** The BLAKE3 hash of `data`: lowercase hex, or bytes with `raw`. */
export async function blake3(params: Value): Promise<Value> {
  const p = bindParams("blake3", params, ["data", "key", "context", "length", "raw"]);
  const message = bytesOrText("blake3", "data", required("blake3", "data", p.data));
  const key = p.key === undefined ? undefined : bytesOnly("blake3", "key", p.key);
  const context = p.context === undefined ? undefined : text("blake3", "context", p.context);
  const length = uint("blake3", "length", p.length, DEFAULT_HASH_LENGTH);
  const raw = bool("blake3", "raw", p.raw, false);
  if (length === 0) throw invalid("blake3", "length", "must be at least 1");
  if (length > MAX_HASH_LENGTH) {
    throw new MethodError(TOO_LARGE, `hash length is over the limit of ${MAX_HASH_LENGTH} bytes (${length} bytes)`, {
      what: "hash length",
      limit: MAX_HASH_LENGTH,
      actual: length,
    });
  }
  if (key !== undefined && context !== undefined) {
    throw invalid("blake3", "context", "cannot be combined with `key`: keyed hashing and key derivation are different modes");
  }
  const opts = {
    dkLen: length,
    ...(key !== undefined ? { key: checkKey(key) } : {}),
    ...(context !== undefined ? { context: Buffer.from(context, "utf8") } : {}),
  };
  let digest: Uint8Array;
  if (message.length <= HASH_PIECE) {
    digest = blake3Hash(message, opts);
  } else {
    const hasher = blake3Hash.create(opts);
    for (let at = 0; at < message.length; at += HASH_PIECE) {
      hasher.update(message.subarray(at, at + HASH_PIECE));
      await yieldToLoop();
    }
    digest = hasher.digest();
  }
  return raw ? digest : Buffer.from(digest).toString("hex");
}

/** Seals `data` into `nonce(12) || ciphertext || tag(16)` under a fresh random nonce. */
export function encrypt(params: Value): Value {
  const p = bindParams("encrypt", params, ["data", "key", "aad"]);
  const plaintext = bytesOrText("encrypt", "data", required("encrypt", "data", p.data));
  const key = checkKey(bytesOnly("encrypt", "key", required("encrypt", "key", p.key)));
  const aad = p.aad === undefined ? undefined : bytesOrText("encrypt", "aad", p.aad);
  const nonce = randomBytes(NONCE_LEN);
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_LEN });
  if (aad !== undefined) cipher.setAAD(aad);
  return Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** Opens a message sealed by `encrypt` under the same key and `aad`. */
export function decrypt(params: Value): Value {
  const p = bindParams("decrypt", params, ["data", "key", "aad"]);
  const message = bytesOnly("decrypt", "data", required("decrypt", "data", p.data));
  const key = checkKey(bytesOnly("decrypt", "key", required("decrypt", "key", p.key)));
  const aad = p.aad === undefined ? undefined : bytesOrText("decrypt", "aad", p.aad);
  if (message.length < OVERHEAD) {
    throw new MethodError(
      ErrorCode.INVALID_PARAMS,
      `\`data\` is ${message.length} bytes, shorter than the ${OVERHEAD} bytes of an encrypted message's nonce and tag`,
      { param: "data", minimum: OVERHEAD, actual: message.length },
    );
  }
  const decipher = createDecipheriv("aes-256-gcm", key, message.subarray(0, NONCE_LEN), { authTagLength: TAG_LEN });
  decipher.setAuthTag(message.subarray(message.length - TAG_LEN));
  if (aad !== undefined) decipher.setAAD(aad);
  const body = decipher.update(message.subarray(NONCE_LEN, message.length - TAG_LEN));
  try {
    return Buffer.concat([body, decipher.final()]);
  } catch {
    throw new MethodError(
      AUTHENTICATION_FAILED,
      "authentication failed: wrong key, wrong associated data, or the message was altered",
    );
  }
}

/** Argon2id is not served here: the call goes on to the next implementation. */
export function deriveKey(): never {
  throw new MethodError(
    ErrorCode.NOT_SUPPORTED,
    "deriveKey is not supported by this implementation (crypto-rust's TypeScript fallback: Node.js 20 " +
      "has no Argon2id, and one in JavaScript would hold this worker's only thread for hundreds of " +
      "milliseconds); the next implementation of the module takes it",
  );
}
