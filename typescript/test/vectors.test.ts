/**
 * Replays every case of tests/vectors/ through the SDK's real code: codecs, frame
 * decoders, envelope validation, handshake validation, and the worker's dispatch.
 */

import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { resolve } from "node:path";
import { describe, test } from "node:test";

import {
  type FrameEvent,
  InvalidHandshake,
  InvalidMessage,
  MethodError,
  ProtocolError,
  type Value,
  type ValueMap,
  Worker,
  buildHandshake,
  checkHandshake,
  getCodec,
  handshakeFields,
  handshakeLine,
  isMap,
  parseHandshake,
  parseMessage,
  parseRequest,
  runSession,
  sameValue,
  toJsonForm,
} from "../src/index.js";
import { REPO, loadVectors, str, vectorCases } from "./support.js";

function payload(c: ValueMap): Uint8Array {
  const frame = str(c, "frame");
  return c["codec"] === "json" ? Buffer.from(frame, "utf8") : Buffer.from(frame, "hex");
}

function assertSame(got: unknown, want: unknown, what = ""): void {
  assert.ok(sameValue(got, want), `${what}: got ${show(got)}, want ${show(want)}`);
}

function show(v: unknown): string {
  try {
    return JSON.stringify(toJsonForm(v as Value), (_k, x: unknown) => (typeof x === "bigint" ? `${x}n` : x));
  } catch {
    return String(v);
  }
}

function mentions(e: unknown, text: Value): boolean {
  return e instanceof Error && e.message.toLowerCase().includes(String(text).toLowerCase());
}

test("every vector file is replayed here", () => {
  const files = readdirSync(resolve(REPO, "tests/vectors")).filter((f) => f.endsWith(".json"));
  assert.deepEqual(files.sort(), ["frames.json", "handshakes.json", "messages.json", "requests.json", "sessions.json", "values.json"]);
});

// ---------------------------------------------------------------- values.json
describe("values.json", () => {
  const json = getCodec("json");
  const msgpack = getCodec("msgpack");
  for (const c of vectorCases("values.json")) {
    test(str(c, "name"), () => {
      if (c["valid"] === false) {
        assert.throws(() => json.decode(Buffer.from(str(c, "json"))), (e) => e instanceof ProtocolError && mentions(e, "bytes"));
        return;
      }
      const expected = c["value"] as Value;
      const fromJson = json.decode(Buffer.from(str(c, "json")));
      const fromMsgpack = msgpack.decode(Buffer.from(str(c, "msgpack"), "hex"));
      assertSame(fromJson, expected, "json");
      assertSame(fromMsgpack, expected, "msgpack");
      // Encoding gives the vector's bytes (compact JSON; smallest MessagePack forms) and
      // decodes back to the value.
      assert.equal(Buffer.from(json.encode(expected)).toString("utf8"), c["json"]);
      assert.equal(Buffer.from(msgpack.encode(expected)).toString("hex"), c["msgpack"]);
      for (const codec of [json, msgpack]) assertSame(codec.decode(codec.encode(expected)), expected, codec.name);
    });
  }
});

// ---------------------------------------------------------------- requests.json
describe("requests.json", () => {
  for (const c of vectorCases("requests.json")) {
    test(str(c, "name"), () => {
      const codec = getCodec(str(c, "codec"));
      if (c["valid"] === false) {
        assert.throws(
          () => parseRequest(codec.decode(payload(c))),
          (e) => e instanceof ProtocolError && mentions(e, c["errorMentions"] ?? null),
        );
        return;
      }
      const req = parseRequest(codec.decode(payload(c)));
      const expect = c["expect"] as ValueMap;
      if ("id" in expect) assertSame(req.id, expect["id"], "id");
      else assert.equal(req.id, undefined);
      assert.equal(req.method, expect["method"]);
      assertSame(req.params, expect["params"], "params");
      assertSame(req.timestamp, expect["timestamp"], "timestamp");
      assertSame(req.timeoutMs, expect["timeoutMs"], "timeoutMs");
      assert.equal(req.id === undefined, expect["notification"]);
    });
  }
});

// ---------------------------------------------------------------- messages.json
describe("messages.json", () => {
  for (const c of vectorCases("messages.json")) {
    test(str(c, "name"), () => {
      const codec = getCodec(str(c, "codec"));
      if (c["valid"] === false) {
        assert.throws(
          () => parseMessage(codec.decode(payload(c))),
          (e) => e instanceof InvalidMessage && mentions(e, c["errorMentions"] ?? null),
        );
        return;
      }
      const msg = parseMessage(codec.decode(payload(c)));
      const expect = c["expect"] as ValueMap;
      assert.equal(msg.kind, expect["kind"]);
      if (msg.kind === "response") {
        assertSame(msg.id, expect["id"], "id");
        assertSame(msg.executionTime, expect["executionTime"], "executionTime");
        if ("result" in expect) {
          assert.equal(msg.error, undefined);
          assertSame(msg.result, expect["result"], "result");
        } else {
          const e = expect["error"] as ValueMap;
          assert.ok(msg.error);
          assert.equal(msg.error.code, e["code"]);
          assert.equal(msg.error.message, e["message"]);
          assertSame(msg.error.data, e["data"] ?? null, "error.data");
        }
      } else if (msg.kind === "progress") {
        assertSame(msg.id, expect["id"], "id");
        assertSame(msg.progress, expect["progress"], "progress");
      } else {
        assert.equal(msg.level, expect["level"]);
        assert.equal(msg.message, expect["message"]);
        assertSame(msg.fields, expect["fields"], "fields");
      }
    });
  }
});

// ---------------------------------------------------------------- handshakes.json
const HANDSHAKE_FIELDS = ["polyglot", "module", "version", "codec", "methods", "maxConcurrency"];

function fieldsOf(h: ReturnType<typeof parseHandshake>): ValueMap {
  const all = handshakeFields(h);
  return Object.fromEntries(HANDSHAKE_FIELDS.map((k) => [k, all[k] as Value]));
}

describe("handshakes.json", () => {
  for (const c of vectorCases("handshakes.json")) {
    test(str(c, "name"), () => {
      const m = c["manifest"] as ValueMap;
      const rules = { name: str(m, "name"), codec: str(m, "codec") as "json" | "msgpack", capabilities: m["capabilities"] as string[] };
      if (c["valid"] === false) {
        assert.throws(
          () => checkHandshake(parseHandshake(str(c, "line")), rules),
          (e) => e instanceof InvalidHandshake && mentions(e, c["errorMentions"] ?? null),
        );
        return;
      }
      const h = parseHandshake(str(c, "line"));
      assertSame(fieldsOf(h), c["expect"], "fields");
      checkHandshake(h, rules);
      // The SDK's own builder, given the expected fields, writes a line that reads back the same.
      const e = c["expect"] as ValueMap;
      const built = buildHandshake(str(e, "module"), str(e, "version"), e["methods"] as string[], {
        codec: str(e, "codec") as "json" | "msgpack",
        maxConcurrency: e["maxConcurrency"] as number,
        pid: 4242,
      });
      const line = handshakeLine(built);
      assert.ok(line.endsWith("\n") && line.indexOf("\n") === line.length - 1);
      assertSame(fieldsOf(parseHandshake(line)), e, "built");
    });
  }

  // The cases whose fields are wrong whatever the manifest: the validator refuses them on
  // its own (the others break a manifest rule, which needs checkHandshake).
  const fieldCases: Record<string, string> = {
    "wrong protocol version": "protocol version",
    "missing protocol version": "polyglot",
    "zero concurrency": "maxConcurrency",
    "unknown codec": "codec",
    "methods missing": "methods",
  };
  for (const [name, mention] of Object.entries(fieldCases)) {
    test(`the validator alone refuses: ${name}`, () => {
      const c = vectorCases("handshakes.json").find((x) => x["name"] === name);
      assert.ok(c, name);
      assert.throws(() => parseHandshake(str(c, "line")), (e) => e instanceof InvalidHandshake && mentions(e, mention));
    });
  }
});

// ---------------------------------------------------------------- frames.json
function readStream(codec: string, limit: number, stream: Buffer, chunk: number): ValueMap[] {
  const decoder = getCodec(codec).frameDecoder(limit);
  const out: ValueMap[] = [];
  const take = (ev: FrameEvent): void => {
    if ("frame" in ev) out.push({ frame: Buffer.from(ev.frame).toString("hex") });
    else out.push({ tooLarge: true, size: ev.size, id: ev.id ?? null });
  };
  for (let i = 0; i < stream.length; i += chunk) decoder.feed(stream.subarray(i, i + chunk)).forEach(take);
  if (decoder.finish() !== undefined) out.push({ truncated: true });
  return out;
}

describe("frames.json", () => {
  for (const c of vectorCases("frames.json")) {
    test(str(c, "name"), () => {
      const stream = Buffer.from(str(c, "stream"), "hex");
      // Whatever the read sizes, the reader yields the same frames.
      for (const chunk of [Math.max(1, stream.length), 1, 2, 3, 7, 64]) {
        const got = readStream(str(c, "codec"), c["limit"] as number, stream, chunk);
        assertSame(got, c["frames"], `chunk ${chunk}`);
      }
    });
  }
});

// ---------------------------------------------------------------- sessions.json
/** The handlers described in sessions.json's `handlers` text. */
export function vectorsWorker(): Worker {
  const worker = new Worker("vectors", { version: "1.0.0", maxConcurrency: 4 });
  worker.method("echo", (params) => params);
  worker.method("add", (params) => {
    const [a, b] = Array.isArray(params) ? params : [];
    if (typeof a !== "number" || typeof b !== "number" || !Number.isSafeInteger(a) || !Number.isSafeInteger(b)) {
      throw new MethodError("INVALID_PARAMS", "add takes two integers");
    }
    return a + b;
  });
  worker.method("fail", (params) => {
    const [code, message] = params as [string, string];
    throw new MethodError(code, message);
  });
  worker.method("boom", () => {
    throw new Error("boom");
  });
  return worker;
}

describe("sessions.json", () => {
  test("the handlers text is what vectorsWorker registers", () => {
    const text = String(loadVectors("sessions.json")["handlers"]);
    for (const name of vectorsWorker().methods) assert.ok(text.includes(`  ${name}(`), name);
  });
  for (const c of vectorCases("sessions.json")) {
    test(str(c, "name"), async () => {
      const send = c["send"] as Value[];
      const session = await runSession(vectorsWorker(), send, { codec: str(c, "codec") });
      assert.equal(session.status, 0);
      assert.equal(session.handshake.module, "vectors");
      assert.equal(session.handshake.codec, c["codec"]);
      for (const m of session.messages) parseMessage(m); // everything written is a valid message
      // Exactly one response per request with an id; none to notifications.
      const ids = send.filter((m) => isMap(m) && "id" in m).map((m) => show((m as ValueMap)["id"]));
      const answered = session.messages.filter((m) => "result" in m || "error" in m).map((m) => show(m["id"]));
      assert.deepEqual(answered.sort(), ids.sort());
      for (const expect of c["expect"] as ValueMap[]) {
        const got = session.response(expect["id"] as string | number);
        assert.ok(got, `no response to ${show(expect["id"])}`);
        assertSame(got["id"], expect["id"], "id");
        if ("result" in expect) {
          assert.ok(!("error" in got), show(got));
          assertSame(got["result"], expect["result"], "result");
        }
        if ("error" in expect) {
          assert.ok(!("result" in got), show(got));
          const e = expect["error"] as ValueMap;
          const g = got["error"] as ValueMap;
          assert.equal(g["code"], e["code"]);
          if ("message" in e) assert.equal(g["message"], e["message"]);
        }
      }
    });
  }
});
