/**
 * A worker written as a module, for the launcher (`run.js`): its exported functions are
 * its methods, its `healthCheck` answers `$health`.
 */

import { type Context, MethodError, type Value } from "../src/index.js";

export const maxConcurrency = 4;

export function upper(params: Value): string {
  const [text] = Array.isArray(params) ? params : [params];
  if (typeof text !== "string") throw new MethodError("INVALID_PARAMS", "upper takes a string");
  return text.toUpperCase();
}

export async function where(_params: Value, ctx: Context): Promise<Value> {
  return { method: ctx.method, module: process.env["POLYGLOT_MODULE"] ?? null, argv: process.argv.slice(2) };
}

export function healthCheck(): Value {
  return { from: "module" };
}
