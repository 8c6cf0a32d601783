#!/usr/bin/env node
/**
 * The launcher: `node run.js <file> [args...]` runs a worker file as the host started it.
 * This is the program the runtime starts for a manifest's `.ts` and `.js` files (a
 * `.ts` file compiled first, into the module folder's `.polyglot/ts-cache/`).
 *
 * It loads the file (CommonJS or ES module, with `import()`). A file that starts serving
 * by itself (`worker.serve()`) is left to it. Otherwise its exports are served
 * ({@link workerFromExports}): its `worker`, or its exported functions as methods under the
 * module name the host passes (`POLYGLOT_MODULE`).
 */

import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

import { workerFromExports } from "./module.js";
import { isServing, logStderr } from "./worker.js";

async function main(): Promise<void> {
  const file = process.argv[2];
  if (file === undefined || file === "-h" || file === "--help") {
    process.stderr.write(
      "usage: node run.js <worker file> [args...]\n\n" +
        "Runs a polyglot worker written with @polyglot/worker: a file that serves a Worker itself,\n" +
        "or a module whose exported functions are its methods. polyglot-host starts it; see\n" +
        "docs/protocol.md to speak to it by hand.\n",
    );
    process.exitCode = 2;
    return;
  }
  // The worker sees its own arguments after its file, as `node file args...` would give.
  process.argv.splice(1, 1);
  const path = resolve(file);
  let exports: Record<string, unknown>;
  try {
    exports = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (e) {
    logStderr(`cannot load ${path}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  }
  if (isServing()) return; // it serves by itself
  const worker = workerFromExports(exports);
  if (worker === undefined) {
    logStderr(
      `${path} exports no function and does not serve a Worker: export the methods ` +
        "(export async function name(params, ctx) { ... }), or call worker.serve()",
    );
    process.exit(1);
  }
  await worker.serve();
}

void main();
