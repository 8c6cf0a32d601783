/**
 * A worker for the process tests, served over stdio as the host starts it. How many calls
 * it takes at once comes from TEST_MAX_CONCURRENCY (default 16).
 *
 *   echo(params)            returns params
 *   sleep([ms, marker?])    waits ms (cancellable); when cancelled, writes "cancelled" to
 *                           the file marker, if given
 *   progress([n])           n progress messages {"step": i}, then n
 *   crash([code])           exits at once with that status, mid-call
 *   stray()                 writes to stdout (console.log and process.stdout.write)
 *   pid()                   the process id
 *   boom()                  throws an Error (INTERNAL)
 */

import { writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

import { Worker } from "../src/index.js";

const worker = new Worker(undefined, { maxConcurrency: Number(process.env["TEST_MAX_CONCURRENCY"] ?? "16") });

worker.method("echo", (params) => params);
worker.method("sleep", async (params, ctx) => {
  const [ms, marker] = params as [number, string | undefined];
  try {
    await sleep(ms, undefined, { signal: ctx.signal });
  } catch (e) {
    if (marker !== undefined && ctx.cancelled) writeFileSync(marker, "cancelled");
    throw e;
  }
  return ms;
});
worker.method("progress", (params, ctx) => {
  const [n] = params as [number];
  for (let i = 1; i <= n; i++) ctx.progress({ step: i });
  return n;
});
worker.method("crash", (params) => process.exit((params as [number])[0]));
worker.method("stray", () => {
  console.log("a stray console.log");
  process.stdout.write("a stray write\n");
  return "printed";
});
worker.method("pid", () => process.pid);
worker.method("boom", () => {
  throw new Error("boom");
});

void worker.serve();
