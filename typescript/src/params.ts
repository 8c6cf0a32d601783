/**
 * Reading a call's params the way the other SDKs bind them to arguments: named (an
 * object), positional (an array, in a given order), or the first param alone (any other
 * value), with unknown names refused.
 */

import { ErrorCode, MethodError } from "./errors.js";
import { type Value, isMap, typeName } from "./values.js";

/**
 * The params of a call as an object of the names given, in their order: an object's keys
 * (each must be one of `names`), an array's elements (at most `names.length` of them), or
 * a lone value as the first name; `null` gives no params. A param not given is absent
 * from the result (and `null` counts as not given).
 *
 * ```ts
 * const { data, key, aad } = bindParams("encrypt", params, ["data", "key", "aad"]);
 * ```
 *
 * @throws {MethodError} `INVALID_PARAMS` naming an unknown param, or too many.
 */
export function bindParams<const N extends string>(method: string, params: Value, names: readonly N[]): Partial<Record<N, Value>> {
  const out: Partial<Record<N, Value>> = {};
  if (params === null) return out;
  if (Array.isArray(params)) {
    if (params.length > names.length) {
      throw new MethodError(
        ErrorCode.INVALID_PARAMS,
        `${method} takes at most ${names.length} params (${names.join(", ")}), got ${params.length}`,
      );
    }
    params.forEach((v, i) => {
      if (v !== null) out[names[i] as N] = v;
    });
    return out;
  }
  if (isMap(params)) {
    const unknown = Object.keys(params).filter((k) => !(names as readonly string[]).includes(k));
    if (unknown.length > 0) {
      throw new MethodError(
        ErrorCode.INVALID_PARAMS,
        `${method}: unknown param${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `\`${k}\``).join(", ")} ` +
          `(it takes ${names.join(", ")})`,
        { param: unknown[0] ?? null },
      );
    }
    for (const n of names) {
      const v = params[n];
      if (v !== undefined && v !== null) out[n] = v;
    }
    return out;
  }
  const first = names[0];
  if (first === undefined) {
    throw new MethodError(ErrorCode.INVALID_PARAMS, `${method} takes no params, got ${typeName(params)}`);
  }
  out[first] = params;
  return out;
}
