/**
 * Shared fixtures: the test vectors, and a real worker process spoken to over its pipes
 * the way the host does.
 */

import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

import {
  type Codec,
  type Connection,
  type FrameDecoder,
  type Handshake,
  type Value,
  type ValueMap,
  type Worker,
  decodeJson,
  getCodec,
  isMap,
  parseHandshake,
} from "../src/index.js";

/** The repository's root (this file runs from `typescript/dist/test/`). */
export const REPO = resolve(__dirname, "../../..");

/** The SDK's compiled files. */
export const DIST = resolve(__dirname, "..");

/** Milliseconds any single wait on a worker may take before the test fails (not hangs). */
export const TIMEOUT = 10_000;

/** One file of `tests/vectors/`, read with the SDK's exact JSON reader: `1.0` stays a
 * float, 64-bit integers stay exact, and `{"$bytes": ...}` become bytes. */
export function loadVectors(name: string): ValueMap {
  const v = decodeJson(readFileSync(resolve(REPO, "tests/vectors", name), "utf8"));
  if (!isMap(v)) throw new Error(`${name}: not an object`);
  return v;
}

/** The cases of one vector file. */
export function vectorCases(name: string): ValueMap[] {
  const cases = loadVectors(name)["cases"];
  if (!Array.isArray(cases)) throw new Error(`${name}: no cases`);
  return cases as ValueMap[];
}

/** A string field of a case. */
export function str(c: ValueMap, key: string): string {
  const v = c[key];
  if (typeof v !== "string") throw new Error(`case field ${key} is not a string`);
  return v;
}

/** The environment the host gives a worker. */
export function workerEnv(codec = "json", extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("POLYGLOT_") && !k.startsWith("TEST_") && !k.startsWith("NODE_TEST")) env[k] = v;
  }
  return {
    ...env,
    POLYGLOT_PROTOCOL: "1",
    POLYGLOT_MODULE: "ts-test",
    POLYGLOT_VERSION: "2.3.4",
    POLYGLOT_CODEC: codec,
    POLYGLOT_TRANSPORT: "stdio",
    POLYGLOT_INSTANCE: "0",
    ...extra,
  };
}

/** A worker process started as the host starts it, spoken to over its pipes. */
export class WorkerProcess {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly codec: Codec;
  readonly beforeHandshake: string[] = [];
  stderr = "";
  private handshakeLine: string | undefined;
  private out = Buffer.alloc(0);
  private readonly decoder: FrameDecoder;
  private readonly queue: ValueMap[] = [];
  private waiters: (() => void)[] = [];
  private exitStatus: number | null | undefined;
  private readonly exited: Promise<number | null>;

  constructor(args: string[], codec = "json", env: NodeJS.ProcessEnv = workerEnv(codec)) {
    this.codec = getCodec(codec);
    this.decoder = this.codec.frameDecoder(1 << 30);
    this.proc = spawn(process.execPath, args, { env, stdio: ["pipe", "pipe", "pipe"] });
    this.proc.stderr.on("data", (d: Buffer) => {
      this.stderr += d.toString("utf8");
      this.wake();
    });
    this.proc.stdout.on("data", (d: Buffer) => this.onOut(d));
    this.exited = new Promise((res) => {
      this.proc.on("exit", (code) => {
        this.exitStatus = code;
        res(code);
        this.wake();
      });
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private onOut(d: Buffer): void {
    let data = d;
    if (this.handshakeLine === undefined) {
      this.out = Buffer.concat([this.out, d]);
      for (;;) {
        const nl = this.out.indexOf(10);
        if (nl < 0) return;
        const line = this.out.subarray(0, nl).toString("utf8");
        this.out = this.out.subarray(nl + 1);
        if (line.includes('"polyglot"')) {
          this.handshakeLine = line;
          break;
        }
        this.beforeHandshake.push(line);
      }
      data = this.out;
    }
    for (const ev of this.decoder.feed(data)) {
      if (!("frame" in ev)) throw new Error("oversize frame from the worker");
      this.queue.push(this.codec.decode(ev.frame) as ValueMap);
    }
    this.wake();
  }

  private async until<T>(what: string, get: () => T | undefined, timeout = TIMEOUT): Promise<T> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const v = get();
      if (v !== undefined) return v;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: not within ${timeout} ms; stderr:\n${this.stderr}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  /** The handshake, once the worker sent it. */
  async handshake(): Promise<Handshake> {
    const line = await this.until("handshake", () => this.handshakeLine ?? (this.exitStatus !== undefined ? "" : undefined));
    if (line === "") throw new Error(`the worker exited before its handshake; stderr:\n${this.stderr}`);
    return parseHandshake(line);
  }

  /** Sends one message. */
  send(message: Value): void {
    this.proc.stdin.write(this.codec.frame(this.codec.encode(message)));
  }

  /** The next message the worker sent. */
  async recv(timeout = TIMEOUT): Promise<ValueMap> {
    return this.until("a message", () => this.queue.shift(), timeout);
  }

  /** The response to `id`; messages before it go to `seen`. */
  async response(id: Value, seen: ValueMap[] = [], timeout = TIMEOUT): Promise<ValueMap> {
    for (;;) {
      const m = await this.recv(timeout);
      seen.push(m);
      if (m["id"] === id && ("result" in m || "error" in m)) return m;
    }
  }

  /** Calls `method` and waits for its response. */
  async call(method: string, params: Value = null, id: Value = 1): Promise<ValueMap> {
    this.send({ id, method, params });
    return this.response(id);
  }

  /** Waits until the worker's stderr matches `re`. */
  async waitStderr(re: RegExp, timeout = TIMEOUT): Promise<void> {
    await this.until(`stderr matching ${String(re)}`, () => (re.test(this.stderr) ? true : undefined), timeout);
  }

  /** Ends the worker's stdin. */
  closeStdin(): void {
    this.proc.stdin.end();
  }

  /** Waits for the worker to exit; its status. */
  async wait(timeout = TIMEOUT): Promise<number | null> {
    const t = new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`no exit within ${timeout} ms; stderr:\n${this.stderr}`)), timeout).unref());
    return Promise.race([this.exited, t]);
  }

  /** Kills it if it still runs. */
  kill(): void {
    if (this.exitStatus === undefined) this.proc.kill("SIGKILL");
  }
}

/** The `error.code` of a response, or `undefined`. */
export function errorCode(m: ValueMap): string | undefined {
  const e = m["error"];
  return isMap(e) && typeof e["code"] === "string" ? e["code"] : undefined;
}

/** A worker served in this process through its real framing, spoken to as the host does. */
export class InProcess {
  readonly conn: Connection;
  readonly codec: Codec;
  private out = Buffer.alloc(0);
  private handshakeSeen = false;
  private readonly decoder: FrameDecoder;
  private readonly queue: ValueMap[] = [];
  private waiters: (() => void)[] = [];

  constructor(worker: Worker, codec = "json", maxFrame?: number) {
    this.codec = getCodec(codec);
    this.decoder = this.codec.frameDecoder(1 << 30);
    this.conn = worker.connect((b) => this.onOut(Buffer.from(b)), { codec, ...(maxFrame ? { maxFrame } : {}) });
  }

  private onOut(d: Buffer): void {
    let data = d;
    if (!this.handshakeSeen) {
      this.out = Buffer.concat([this.out, d]);
      const nl = this.out.indexOf(10);
      if (nl < 0) return;
      this.handshakeSeen = true;
      data = this.out.subarray(nl + 1);
    }
    for (const ev of this.decoder.feed(data)) {
      if ("frame" in ev) this.queue.push(this.codec.decode(ev.frame) as ValueMap);
    }
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(message: Value): void {
    this.conn.onData(this.codec.frame(this.codec.encode(message)));
  }

  sendRaw(bytes: Uint8Array): void {
    this.conn.onData(bytes);
  }

  async recv(timeout = TIMEOUT): Promise<ValueMap> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const m = this.queue.shift();
      if (m !== undefined) return m;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message within ${timeout} ms`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  /** Messages received so far and not yet taken. */
  pending(): ValueMap[] {
    return this.queue.splice(0);
  }

  async response(id: Value, seen: ValueMap[] = [], timeout = TIMEOUT): Promise<ValueMap> {
    for (;;) {
      const m = await this.recv(timeout);
      seen.push(m);
      if (m["id"] === id && ("result" in m || "error" in m)) return m;
    }
  }

  async call(method: string, params: Value = null, id: Value = 1): Promise<ValueMap> {
    this.send({ id, method, params });
    return this.response(id);
  }
}
