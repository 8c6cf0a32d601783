// The peer: a Node.js parent calling a Node.js child with newline JSON over stdio.
// Usage: node node_parent.js ROUNDS CALLS INFLIGHT. Prints JSON: p50/p99 of one call at a
// time, and calls per second with INFLIGHT calls in flight.
const { spawn } = require("child_process");
const readline = require("readline");
const path = require("path");

const [rounds, calls, inflight] = process.argv.slice(2).map(Number);
const child = spawn(process.execPath, [path.join(__dirname, "node_child.js")], { stdio: ["pipe", "pipe", "inherit"] });
const pending = new Map();
let nextId = 1;
readline.createInterface({ input: child.stdout }).on("line", (line) => {
  const res = JSON.parse(line);
  const resolve = pending.get(res.id);
  pending.delete(res.id);
  resolve(res.result);
});
function call(method, params) {
  const id = nextId++;
  return new Promise((resolve) => {
    pending.set(id, resolve);
    child.stdin.write(JSON.stringify({ id, method, params, timestamp: Date.now() }) + "\n");
  });
}

(async () => {
  for (let i = 0; i < 2000; i++) await call("echo", ["hello"]); // warm-up
  const lat = [];
  for (let i = 0; i < rounds; i++) {
    const t = process.hrtime.bigint();
    await call("echo", ["hello"]);
    lat.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  lat.sort((a, b) => a - b);
  let done = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: inflight }, async () => {
    while (done < calls) { done++; await call("echo", ["hello"]); }
  }));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ p50_us: lat[lat.length >> 1], p99_us: lat[Math.floor(lat.length * 0.99)], calls_per_s: calls / secs }));
  child.stdin.end();
})();
