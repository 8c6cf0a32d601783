/**
 * The worker's dispatch, in this process through its real framing: cancellation through
 * the AbortSignal, progress, many calls in flight, `$health` and `healthCheck`,
 * `$shutdown`'s drain, and the answers a host relies on.
 */

import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";

import {
  type Context,
  Float,
  MethodError,
  type Value,
  type ValueMap,
  Worker,
  bindParams,
  decodeJson,
  encodeJson,
  getCodec,
  isMap,
  workerFromExports,
} from "../src/index.js";
import { InProcess, errorCode } from "./support.js";

function testWorker(): Worker {
  const w = new Worker("ts-test", { version: "1.0.0", maxConcurrency: 8 });
  w.method("echo", (p) => p);
  w.method("sleep", async (p, ctx) => {
    const [ms] = p as [number];
    await sleep(ms, undefined, { signal: ctx.signal });
    return ms;
  });
  w.method("progress", async (p, ctx) => {
    const [n] = p as [number];
    for (let i = 1; i <= n; i++) ctx.progress({ step: i });
    return n;
  });
  w.method("lateProgress", async (_p, ctx) => {
    setTimeout(() => ctx.progress("too late"), 5);
    return "done";
  });
  w.method("bad", () => new Map());
  w.method("big", (p) => "x".repeat((p as [number])[0]));
  w.method("undef", () => undefined);
  w.method("bytes", () => Buffer.from("hi"));
  return w;
}

describe("dispatch", () => {
  test("$cancel answers CANCELLED at once and aborts the method's signal", async () => {
    let aborted: unknown;
    const w = new Worker("ts-test");
    w.method("wait", (_p, ctx: Context) => {
      return new Promise((_resolve, reject) => {
        ctx.signal.addEventListener("abort", () => {
          aborted = ctx.signal.reason;
          reject(ctx.signal.reason);
        });
      });
    });
    const p = new InProcess(w);
    p.send({ id: 7, method: "wait" });
    await sleep(10);
    p.send({ method: "$cancel", params: { id: 7 } });
    const r = await p.response(7);
    assert.equal(errorCode(r), "CANCELLED");
    assert.ok(aborted instanceof MethodError && aborted.code === "CANCELLED");
    // The method's rejection after the answer is dropped: one answer only.
    await sleep(20);
    assert.deepEqual(p.pending(), []);
  });

  test("a cancelled timer stops; $cancel of an unknown id is ignored; with an id it is answered null", async () => {
    const p = new InProcess(testWorker());
    p.send({ id: 1, method: "sleep", params: [60_000] });
    p.send({ id: 2, method: "$cancel", params: { id: 1 } });
    const seen: ValueMap[] = [];
    await p.response(2, seen);
    const cancelled = seen.find((m) => m["id"] === 1) ?? (await p.response(1));
    assert.equal(errorCode(cancelled), "CANCELLED");
    p.send({ method: "$cancel", params: { id: 999 } });
    assert.equal((await p.call("echo", 3, 3))["result"], 3);
  });

  test("progress comes before the response, never after it", async () => {
    const p = new InProcess(testWorker());
    const seen: ValueMap[] = [];
    const r = await p.response((p.send({ id: 5, method: "progress", params: [3] }), 5), seen);
    assert.equal(r["result"], 3);
    assert.deepEqual(
      seen.filter((m) => "progress" in m).map((m) => (m["progress"] as ValueMap)["step"]),
      [1, 2, 3],
    );
    await p.call("lateProgress", null, 6);
    await sleep(20);
    assert.deepEqual(p.pending(), []);
  });

  test("many calls in flight are answered as each finishes", async () => {
    const p = new InProcess(testWorker());
    p.send({ id: "slow", method: "sleep", params: [80] });
    p.send({ id: "fast", method: "sleep", params: [5] });
    const first = await p.recv();
    const second = await p.recv();
    assert.deepEqual([first["id"], second["id"]], ["fast", "slow"]);
  });

  test("an id already in flight is refused; the running call is not disturbed", async () => {
    const p = new InProcess(testWorker());
    p.send({ id: 1, method: "sleep", params: [30] });
    p.send({ id: 1, method: "echo", params: "again" });
    const refused = await p.recv();
    assert.equal(errorCode(refused), "INVALID_REQUEST");
    assert.equal((await p.recv())["result"], 30);
  });

  test("$shutdown refuses new calls, lets the held ones finish, then ends with 0", async () => {
    const p = new InProcess(testWorker());
    p.send({ id: 1, method: "sleep", params: [40] });
    p.send({ id: 2, method: "$shutdown" });
    p.send({ id: 3, method: "echo", params: 1 });
    const seen: ValueMap[] = [];
    await p.response(1, seen);
    assert.equal(seen.find((m) => m["id"] === 2)?.["result"], null);
    assert.equal(errorCode(seen.find((m) => m["id"] === 3) ?? {}), "SHUTTING_DOWN");
    assert.equal(await p.conn.ended, 0);
  });

  test("the end of input stops at once, without waiting for calls", async () => {
    const p = new InProcess(testWorker());
    p.send({ id: 1, method: "sleep", params: [60_000] });
    p.conn.onEnd();
    assert.equal(await p.conn.ended, 0);
  });

  test("results the protocol cannot carry are INTERNAL; too large ones FRAME_TOO_LARGE", async () => {
    const p = new InProcess(testWorker(), "msgpack", 4096);
    const bad = await p.call("bad", null, 1);
    assert.equal(errorCode(bad), "INTERNAL");
    assert.match(String((bad["error"] as ValueMap)["message"]), /Map is not a protocol value/);
    assert.equal(errorCode(await p.call("big", [10_000], 2)), "FRAME_TOO_LARGE");
    assert.equal((await p.call("undef", null, 3))["result"], null);
    const bytes = (await p.call("bytes", null, 4))["result"];
    assert.ok(bytes instanceof Uint8Array && Buffer.from(bytes).toString() === "hi");
  });

  test("an oversize request with a readable id is answered FRAME_TOO_LARGE; the next is intact", async () => {
    const p = new InProcess(testWorker(), "json", 1024);
    p.sendRaw(Buffer.from(`{"id":9,"method":"echo","params":"${"y".repeat(5000)}"}\n`));
    assert.equal(errorCode(await p.recv()), "FRAME_TOO_LARGE");
    assert.equal((await p.call("echo", "ok", 10))["result"], "ok");
  });

  test("a notification runs and is not answered", async () => {
    const seen: Value[] = [];
    const w = new Worker("ts-test");
    w.method("note", (params) => void seen.push(params));
    w.method("echo", (params) => params);
    const p = new InProcess(w);
    p.send({ method: "note", params: 1 });
    assert.equal((await p.call("echo", 2, 2))["result"], 2);
    assert.deepEqual(seen, [1]);
    assert.deepEqual(p.pending(), []);
  });
});

describe("$health", () => {
  test("an exported healthCheck is merged into the answer; one that throws is UNHEALTHY", async () => {
    let healthy = true;
    const w = workerFromExports({
      echo: (p: Value) => p,
      healthCheck: () => {
        if (!healthy) throw new Error("disk full");
        return { cache: "warm" };
      },
    });
    assert.ok(w);
    assert.deepEqual(w.methods, ["echo"]);
    const p = new InProcess(w);
    assert.deepEqual((await p.call("$health", null, 1))["result"], { status: "ok", cache: "warm" });
    healthy = false;
    const r = await p.call("$health", null, 2);
    assert.equal(errorCode(r), "UNHEALTHY");
    assert.match(String((r["error"] as ValueMap)["message"]), /disk full/);
  });

  test("a MethodError from healthCheck keeps its code; the default answer is ok", async () => {
    const w = workerFromExports({ echo: (p: Value) => p, healthCheck: () => Promise.reject(new MethodError("NOT_READY", "warming")) });
    assert.ok(w);
    assert.equal(errorCode(await new InProcess(w).call("$health", null, 1)), "NOT_READY");
    const plain = workerFromExports({ echo: (p: Value) => p });
    assert.ok(plain);
    assert.deepEqual((await new InProcess(plain).call("$health", null, 1))["result"], { status: "ok" });
  });
});

describe("module exports", () => {
  test("functions become methods; classes, _private and non-functions do not", () => {
    class Helper {}
    const w = workerFromExports({
      b: () => 1,
      a: async () => 2,
      _hidden: () => 3,
      Helper,
      maxConcurrency: 32,
      version: "9.9.9",
      default: { fromCjs: () => 4 },
    });
    assert.ok(w);
    assert.deepEqual(w.methods, ["a", "b", "fromCjs"]);
    assert.equal(w.maxConcurrency, 32);
    assert.equal(w.version, "9.9.9");
    assert.equal(workerFromExports({ x: 1 }), undefined);
  });

  test("an exported Worker is served as it is", () => {
    const w = new Worker("mine");
    assert.equal(workerFromExports({ worker: w }), w);
    assert.equal(workerFromExports({ default: w }), w);
  });
});

describe("bindParams", () => {
  const names = ["data", "key", "aad"] as const;
  test("named, positional and lone params", () => {
    assert.deepEqual(bindParams("m", { data: "x", key: 1 }, names), { data: "x", key: 1 });
    assert.deepEqual(bindParams("m", ["x", null, 2], names), { data: "x", aad: 2 });
    assert.deepEqual(bindParams("m", "x", names), { data: "x" });
    assert.deepEqual(bindParams("m", null, names), {});
  });
  test("unknown names and too many params are INVALID_PARAMS, naming them", () => {
    assert.throws(() => bindParams("m", { data: 1, lenght: 3 }, names), (e) => e instanceof MethodError && e.code === "INVALID_PARAMS" && /lenght/.test(e.message));
    assert.throws(() => bindParams("m", [1, 2, 3, 4], names), (e) => e instanceof MethodError && e.code === "INVALID_PARAMS");
  });
});

describe("values", () => {
  test("integers beyond 2^53 are bigints; whole floats are Floats; both round-trip", () => {
    const v = decodeJson('[9007199254740993, 2.0, -0.0, 1.5, 1e300, -9223372036854775808]') as Value[];
    assert.equal(v[0], 9007199254740993n);
    assert.ok(v[1] instanceof Float && v[1].value === 2);
    assert.ok(v[2] instanceof Float && Object.is(v[2].value, -0));
    assert.equal(v[3], 1.5);
    assert.equal(encodeJson(v), "[9007199254740993,2.0,-0.0,1.5,1e+300,-9223372036854775808]");
    const mp = getCodec("msgpack");
    assert.equal(encodeJson(mp.decode(mp.encode(v))), encodeJson(v));
  });

  test("a number that is not a safe integer is sent as a float; new Float(n) forces one", () => {
    assert.equal(encodeJson([2 ** 60, new Float(3), 3]), "[1152921504606847000.0,3.0,3]");
  });

  test("what the data model lacks is refused with its path", () => {
    assert.throws(() => encodeJson({ a: [1, NaN] }), /\$\.a\[1\]: NaN is not a JSON number/);
    assert.throws(() => encodeJson({ when: new Date(0) }), /\$\.when: a Date/);
    assert.throws(() => encodeJson(2n ** 64n), /outside the 64-bit range/);
    assert.throws(() => getCodec("msgpack").encode("\ud800"), /surrogate/);
    assert.equal(encodeJson({ a: undefined, b: 1 }), '{"b":1}');
  });

  test("a __proto__ key is data, not a prototype", () => {
    for (const text of ['{"__proto__":{"x":1}}', '{"__proto__":{"x":1.5}}']) {
      const v = decodeJson(text);
      assert.ok(isMap(v));
      assert.equal(Object.getPrototypeOf(v), Object.prototype);
      assert.deepEqual(Object.keys(v), ["__proto__"]);
    }
  });

  test("deep nesting is refused, not a stack overflow", () => {
    const deep = "[".repeat(100_000) + "1.5" + "]".repeat(100_000);
    assert.throws(() => decodeJson(deep), /nested deeper/);
  });
});
