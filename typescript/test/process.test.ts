/**
 * Real worker processes, started as the host starts them and spoken to over their pipes:
 * both codecs, cancellation, `$shutdown`, the end of stdin, stdout kept for the protocol,
 * the launcher serving a module's exports, and a worker run by hand.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, test } from "node:test";

import { type ValueMap } from "../src/index.js";
import { DIST, WorkerProcess, errorCode, workerEnv } from "./support.js";

const FIXTURE = resolve(DIST, "test/fixture_worker.js");
const MODULE = resolve(DIST, "test/fixture_module.js");
const RUN = resolve(DIST, "src/run.js");

const started: WorkerProcess[] = [];
function start(args: string[], codec = "json", env?: NodeJS.ProcessEnv): WorkerProcess {
  const w = new WorkerProcess(args, codec, env ?? workerEnv(codec));
  started.push(w);
  return w;
}
afterEach(() => {
  for (const w of started.splice(0)) w.kill();
});

for (const codec of ["json", "msgpack"]) {
  describe(`stdio, ${codec}`, () => {
    test("handshake, calls, binary, errors", async () => {
      const w = start([FIXTURE], codec);
      const h = await w.handshake();
      assert.equal(h.module, "ts-test");
      assert.equal(h.version, "2.3.4");
      assert.equal(h.codec, codec);
      assert.equal(h.language, "typescript");
      assert.equal(h.maxConcurrency, 16);
      assert.equal(h.pid, w.proc.pid);
      assert.deepEqual(await w.call("echo", ["a", 1, null]).then((r) => r["result"]), ["a", 1, null]);
      const bin = (await w.call("echo", [Buffer.from([0, 255])], 2))["result"] as unknown[];
      assert.ok(bin[0] instanceof Uint8Array && Buffer.from(bin[0]).equals(Buffer.from([0, 255])));
      const boom = await w.call("boom", null, 3);
      assert.equal(errorCode(boom), "INTERNAL");
      await w.waitStderr(/method boom failed/);
      assert.equal(errorCode(await w.call("nope", null, 4)), "METHOD_NOT_FOUND");
      assert.deepEqual((await w.call("$health", null, 5))["result"], { status: "ok" });
    });

    test("$cancel stops the call's work and answers CANCELLED", async () => {
      const dir = mkdtempSync(join(tmpdir(), "polyglot-ts-"));
      const marker = join(dir, "marker");
      const w = start([FIXTURE], codec);
      await w.handshake();
      w.send({ id: 1, method: "sleep", params: [60_000, marker] });
      await new Promise((r) => setTimeout(r, 50));
      w.send({ method: "$cancel", params: { id: 1 } });
      assert.equal(errorCode(await w.response(1)), "CANCELLED");
      for (let i = 0; i < 100 && !existsSync(marker); i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(readFileSync(marker, "utf8"), "cancelled");
      // Still serving.
      assert.equal((await w.call("echo", 5, 2))["result"], 5);
    });

    test("$shutdown finishes the calls held, then exits 0", async () => {
      const w = start([FIXTURE], codec);
      await w.handshake();
      w.send({ id: 1, method: "sleep", params: [200] });
      w.send({ method: "$shutdown" });
      w.send({ id: 2, method: "echo", params: 1 });
      const seen: ValueMap[] = [];
      assert.equal((await w.response(1, seen))["result"], 200);
      assert.equal(errorCode(seen.find((m) => m["id"] === 2) ?? {}), "SHUTTING_DOWN");
      assert.equal(await w.wait(), 0);
    });

    test("the end of stdin ends the worker at once, calls running or not", async () => {
      const w = start([FIXTURE], codec);
      await w.handshake();
      w.send({ id: 1, method: "sleep", params: [60_000] });
      w.closeStdin();
      const t0 = Date.now();
      assert.equal(await w.wait(), 0);
      assert.ok(Date.now() - t0 < 5000);
    });
  });
}

describe("stdio", () => {
  test("many calls in flight, answered as each finishes", async () => {
    const w = start([FIXTURE], "msgpack");
    await w.handshake();
    for (let i = 0; i < 200; i++) w.send({ id: i, method: "sleep", params: [(200 - i) % 7] });
    const got = new Set<unknown>();
    while (got.size < 200) got.add((await w.recv())["id"]);
    assert.equal(got.size, 200);
  });

  test("progress, then the result", async () => {
    const w = start([FIXTURE]);
    await w.handshake();
    const seen: ValueMap[] = [];
    w.send({ id: 3, method: "progress", params: [3] });
    await w.response(3, seen);
    assert.deepEqual(seen.map((m) => ("progress" in m ? "progress" : "response")), ["progress", "progress", "progress", "response"]);
  });

  test("stdout belongs to the protocol: the program's own output goes to stderr", async () => {
    const w = start([FIXTURE]);
    await w.handshake();
    assert.equal((await w.call("stray"))["result"], "printed");
    assert.equal((await w.call("echo", "after", 2))["result"], "after");
    await w.waitStderr(/a stray console\.log/);
    await w.waitStderr(/a stray write/);
  });

  test("a worker that exits mid-call leaves the call unanswered and its status visible", async () => {
    const w = start([FIXTURE]);
    await w.handshake();
    w.send({ id: 1, method: "crash", params: [3] });
    assert.equal(await w.wait(), 3);
  });

  test("run by hand, it says what it is and exits 1", () => {
    const env = { ...process.env };
    delete env["POLYGLOT_PROTOCOL"];
    const r = spawnSync(process.execPath, [FIXTURE], { env, input: "", encoding: "utf8", timeout: 10_000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /polyglot worker/);
    assert.match(r.stderr, /started by polyglot-host/);
    assert.equal(r.stdout, "");
  });
});

describe("the launcher", () => {
  test("serves a module's exported functions under the host's module name", async () => {
    const w = start([RUN, MODULE, "--flag"], "msgpack", workerEnv("msgpack", { POLYGLOT_MODULE: "mod-ts" }));
    const h = await w.handshake();
    assert.equal(h.module, "mod-ts");
    assert.deepEqual([...h.methods].sort(), ["upper", "where"]);
    assert.equal(h.maxConcurrency, 4);
    assert.equal((await w.call("upper", ["hi"]))["result"], "HI");
    assert.equal(errorCode(await w.call("upper", [5], 2)), "INVALID_PARAMS");
    assert.deepEqual((await w.call("where", null, 3))["result"], { method: "where", module: "mod-ts", argv: ["--flag"] });
    assert.deepEqual((await w.call("$health", null, 4))["result"], { status: "ok", from: "module" });
    w.closeStdin();
    assert.equal(await w.wait(), 0);
  });

  test("leaves a file that serves by itself to it", async () => {
    const w = start([RUN, FIXTURE]);
    assert.ok((await w.handshake()).methods.includes("sleep"));
    assert.equal((await w.call("echo", 1))["result"], 1);
  });

  test("a file that exports nothing is reported, exit 1", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "polyglot-ts-")), "empty.js");
    writeFileSync(file, "module.exports = { answer: 42 };\n");
    const w = start([RUN, file]);
    assert.equal(await w.wait(), 1);
    assert.match(w.stderr, /exports no function/);
  });

  test("a file that does not load is reported with its error, exit 1", async () => {
    const w = start([RUN, "/no/such/file.js"]);
    assert.equal(await w.wait(), 1);
    assert.match(w.stderr, /cannot load \/no\/such\/file\.js/);
  });
});

describe("the README's example", () => {
  test("is examples/upper.ts, and runs as a worker", async () => {
    const readme = readFileSync(resolve(DIST, "../README.md"), "utf8");
    const example = readFileSync(resolve(DIST, "../examples/upper.ts"), "utf8");
    assert.ok(readme.includes("```ts\n" + example + "```"), "README.md shows examples/upper.ts as it is");
    const w = start([resolve(DIST, "examples/upper.js")]);
    const h = await w.handshake();
    assert.equal(h.module, "upper-ts");
    assert.equal((await w.call("upper", ["hi"]))["result"], "HI");
    assert.equal(errorCode(await w.call("upper", [1], 2)), "INVALID_PARAMS");
    w.send({ method: "$shutdown" });
    assert.equal(await w.wait(), 0);
  });
});
