/**
 * A module's exports as a worker: every exported function is a method, an exported
 * `healthCheck` answers `$health`. This is how the runtime runs a `.ts` or `.js` file
 * named by a manifest (`"path"`, or a `"fallback"` file): through `run.ts`, which loads
 * the file and hands its exports here.
 *
 * ```ts
 * // fallback/index.ts
 * import { MethodError, type Context, type Value } from "@polyglot/worker";
 *
 * export async function upper(params: Value, ctx: Context): Promise<string> { ... }
 * export function healthCheck() { return { cache: "warm" }; }
 * export const maxConcurrency = 32;
 * ```
 */

import { type Handler, type HealthCheck, Worker, isWorker } from "./worker.js";

/** Exported functions that are not methods. */
const NOT_METHODS = new Set(["default", "__esModule", "healthCheck"]);

/** What a module exports, as `import()` gives it (a CommonJS module's `module.exports` is
 * its `default`). */
export type ModuleExports = Record<string, unknown>;

/**
 * The worker a module's exports describe: its `worker` (or default export) when that is a
 * {@link Worker}, else a new worker whose methods are its exported functions (names
 * starting with `_` and classes left out), with `healthCheck` as its health function and
 * its exported `maxConcurrency` (a number) and `version` (a string), if any. `undefined` when it exports no
 * function at all.
 */
export function workerFromExports(exports: ModuleExports, name?: string): Worker | undefined {
  const cjs = exports["default"];
  for (const w of [exports["worker"], cjs, isObject(cjs) ? cjs["worker"] : undefined]) {
    if (isWorker(w)) return w;
  }
  const all: Record<string, unknown> = { ...(isObject(cjs) ? cjs : {}), ...exports };
  const maxConcurrency = all["maxConcurrency"];
  const version = all["version"];
  const worker = new Worker(name, {
    ...(typeof maxConcurrency === "number" ? { maxConcurrency } : {}),
    ...(typeof version === "string" ? { version } : {}),
  });
  let any = false;
  for (const [key, fn] of Object.entries(all).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (NOT_METHODS.has(key) || key.startsWith("_") || typeof fn !== "function" || isClass(fn)) continue;
    worker.method(key, fn as Handler);
    any = true;
  }
  const health = all["healthCheck"];
  if (typeof health === "function") worker.health(health as HealthCheck);
  return any ? worker : undefined;
}

/** Serves a module's exports (see {@link workerFromExports}) as the host started this
 * program, then ends the process.
 * @throws {TypeError} when the exports hold no method. */
export async function serveModule(exports: ModuleExports, name?: string): Promise<void> {
  const worker = workerFromExports(exports, name);
  if (worker === undefined) throw new TypeError("the module exports no function to serve");
  return worker.serve();
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

function isClass(fn: unknown): boolean {
  return typeof fn === "function" && /^class[\s{]/.test(Function.prototype.toString.call(fn));
}
