/**
 * A worker for the host's integration tests, written with the TypeScript SDK as a module:
 * its exported functions are its methods, and the runtime compiles and runs it
 * (`"language": "typescript", "path": "worker.ts"`, or a `"fallback"` file). The module
 * name comes from POLYGLOT_MODULE, how many calls it takes at once from
 * TEST_MAX_CONCURRENCY (default 16). Its methods match tests/workers/python_worker.py:
 *
 *   echo(...args)    one positional arg -> it; several -> the list; named args -> the object
 *   add(a, b)        a + b for two integers, else INVALID_PARAMS
 *   fail(code, msg)  an error response with that code and message
 *   boom()           throws Error("boom") -> INTERNAL
 *   sleep(ms, cancelMarker?)
 *                    waits ms milliseconds (cancellable), returns ms; when cancelled,
 *                    writes "cancelled" to the file cancelMarker if given
 *   progress(n)      sends n progress messages {"step": i}, i = 1..n, then returns n
 *   crash(code = 3)  exits the process at once with that status, mid-call
 *   pid()            the process id
 *   env(name)        the environment variable, or null
 *   version()        POLYGLOT_VERSION
 *   big(n)           a string of n "x"
 *   stray()          prints to stdout (console.log and process.stdout.write), returns "printed"
 *   unsupported()    answers NOT_SUPPORTED: the call goes on down the fallback chain
 *
 * Start-up behaviours, by environment variable:
 *   TEST_EXIT_AT_START=N   writes "fatal: cannot load model" to stderr and exits N
 *   TEST_HEALTH=unhealthy  `$health` answers error UNHEALTHY (degraded: {"status": "degraded"})
 *   TEST_HEALTH_FILE=path  `$health` answers error UNHEALTHY while that file exists
 *   TEST_TS_HEALTH_FILE=path
 *                          the same, for this worker only (empty: never), overriding
 *                          TEST_HEALTH_FILE: a fallback file has its module's environment
 *   TEST_NOT_SUPPORTED=echo,add
 *                          those methods answer NOT_SUPPORTED
 */

import { existsSync, writeFileSync } from "node:fs";
import { setTimeout as sleepFor } from "node:timers/promises";

import { type Context, ErrorCode, MethodError, type Value, isMap } from "@polyglot/worker";

if (process.env["TEST_EXIT_AT_START"] !== undefined) {
  console.error("fatal: cannot load model");
  process.exit(Number(process.env["TEST_EXIT_AT_START"]) || 1);
}

export const maxConcurrency = Number(process.env["TEST_MAX_CONCURRENCY"] ?? "16");

/** The params as positional arguments: an array's elements, or one value. */
function positional(params: Value): Value[] {
  if (params === null) return [];
  return Array.isArray(params) ? params : [params];
}

function isInt(v: Value | undefined): v is number {
  return typeof v === "number" && Number.isSafeInteger(v);
}

/** Answers NOT_SUPPORTED when TEST_NOT_SUPPORTED names `method`. */
function maybeUnsupported(method: string): void {
  if ((process.env["TEST_NOT_SUPPORTED"] ?? "").split(",").includes(method)) {
    throw new MethodError(ErrorCode.NOT_SUPPORTED, `${method} is not supported by this implementation`);
  }
}

export function echo(params: Value): Value {
  maybeUnsupported("echo");
  if (isMap(params)) return params;
  const args = positional(params);
  return args.length === 1 ? (args[0] as Value) : args;
}

export function add(params: Value): Value {
  maybeUnsupported("add");
  const [a, b, ...rest] = positional(params);
  if (!isInt(a) || !isInt(b) || rest.length > 0) throw new MethodError(ErrorCode.INVALID_PARAMS, "add takes two integers");
  return a + b;
}

export function fail(params: Value): never {
  const [code, message] = positional(params);
  throw new MethodError(String(code), String(message));
}

export function boom(): never {
  throw new Error("boom");
}

export async function sleep(params: Value, ctx: Context): Promise<Value> {
  const [ms, marker] = positional(params);
  if (!isInt(ms)) throw new MethodError(ErrorCode.INVALID_PARAMS, "sleep takes milliseconds");
  try {
    await sleepFor(ms, undefined, { signal: ctx.signal });
  } catch (e) {
    if (ctx.cancelled && typeof marker === "string") writeFileSync(marker, "cancelled");
    throw e;
  }
  return ms;
}

export function progress(params: Value, ctx: Context): Value {
  const [n] = positional(params);
  if (!isInt(n)) throw new MethodError(ErrorCode.INVALID_PARAMS, "progress takes a count");
  for (let i = 1; i <= n; i++) ctx.progress({ step: i });
  return n;
}

export function crash(params: Value): never {
  const [code] = positional(params);
  process.exit(isInt(code) ? code : 3);
}

export function pid(): Value {
  return process.pid;
}

export function env(params: Value): Value {
  const [name] = positional(params);
  return process.env[String(name)] ?? null;
}

export function version(): Value {
  return process.env["POLYGLOT_VERSION"] ?? null;
}

export function big(params: Value): Value {
  const [n] = positional(params);
  return "x".repeat(isInt(n) ? n : 0);
}

export function stray(): Value {
  console.log("a stray console.log");
  process.stdout.write("a stray write\n");
  return "printed";
}

export function unsupported(): never {
  throw new MethodError(ErrorCode.NOT_SUPPORTED, "unsupported is not supported by this implementation");
}

export function healthCheck(): Value {
  const file = process.env["TEST_TS_HEALTH_FILE"] ?? process.env["TEST_HEALTH_FILE"];
  if (process.env["TEST_HEALTH"] === "unhealthy" || (file !== undefined && file !== "" && existsSync(file))) {
    throw new MethodError(ErrorCode.UNHEALTHY, "unhealthy on purpose");
  }
  if (process.env["TEST_HEALTH"] === "degraded") return { status: "degraded", reason: "warming up" };
  return null;
}
