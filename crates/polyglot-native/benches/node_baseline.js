// Node.js baselines for `benches/native.rs`, which runs this script as
// `node node_baseline.js <dir>` and reads the JSON it prints on stdout.
//
// `<dir>` holds the inputs the Rust cases use: `doc.json` (the 10 MB JSON document) and
// `logs.txt` (the 1M log lines). Each operation is timed with process.hrtime.bigint()
// and its best time kept, as the Rust side does. Inputs are read and decoded to strings
// before any timing: JSON.parse and RegExp need a string, where the Rust functions take
// the bytes.
//
// Node 20 has no zstd in zlib (it came in Node 22.15 / 23.8), so compression is
// measured with gzip at levels 1 and 6 instead.

'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');

// Each operation runs at least MIN_RUNS times, then until BUDGET_MS have passed.
const MIN_RUNS = 3;
const BUDGET_MS = 1500;

function best(fn) {
  let bestNs = Infinity;
  const start = process.hrtime.bigint();
  for (let runs = 0; ; runs++) {
    const t = process.hrtime.bigint();
    fn();
    const ns = Number(process.hrtime.bigint() - t);
    if (ns < bestNs) bestNs = ns;
    const spentMs = Number(process.hrtime.bigint() - start) / 1e6;
    if (runs + 1 >= MIN_RUNS && spentMs > BUDGET_MS) break;
  }
  return bestNs / 1e6;
}

function aesGcm(len) {
  const key = Buffer.alloc(32, 0x42);
  const iv = Buffer.alloc(12, 7);
  const plaintext = crypto.randomBytes(len);
  let sealed;
  let tag;
  const seal = best(() => {
    const c = crypto.createCipheriv('aes-256-gcm', key, iv);
    sealed = c.update(plaintext);
    c.final();
    tag = c.getAuthTag();
  });
  let opened;
  const open = best(() => {
    const d = crypto.createDecipheriv('aes-256-gcm', key, iv);
    d.setAuthTag(tag);
    opened = d.update(sealed);
    d.final();
  });
  if (!opened.equals(plaintext)) throw new Error('AES-GCM round trip failed');
  return { seal, open };
}

function main() {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: node node_baseline.js <dir with doc.json and logs.txt>');
    process.exit(2);
  }
  const docBytes = fs.readFileSync(path.join(dir, 'doc.json'));
  const doc = docBytes.toString('utf8');
  const logs = fs.readFileSync(path.join(dir, 'logs.txt'), 'utf8');

  const aes1 = aesGcm(1_000_000);
  const aes64 = aesGcm(64_000_000);

  let gz1;
  let gz6;
  const gzip1 = best(() => {
    gz1 = zlib.gzipSync(docBytes, { level: 1 });
  });
  const gzip6 = best(() => {
    gz6 = zlib.gzipSync(docBytes, { level: 6 });
  });

  let out;
  const jsonRoundTrip = best(() => {
    out = JSON.stringify(JSON.parse(doc));
  });
  const jsonParse = best(() => {
    JSON.parse(doc);
  });
  if (out.length === 0) throw new Error('empty JSON output');

  const email = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
  let matches = 0;
  const regexCount = best(() => {
    const m = logs.match(email);
    matches = m === null ? 0 : m.length;
  });

  console.log(
    JSON.stringify({
      node: process.version,
      aes_gcm: {
        seal_1mb_ms: aes1.seal,
        open_1mb_ms: aes1.open,
        seal_64mb_ms: aes64.seal,
        open_64mb_ms: aes64.open,
      },
      gzip: {
        level1_ms: gzip1,
        level1_bytes: gz1.length,
        level6_ms: gzip6,
        level6_bytes: gz6.length,
      },
      json: {
        parse_stringify_ms: jsonRoundTrip,
        parse_ms: jsonParse,
        bytes: docBytes.length,
      },
      regex: { count_ms: regexCount, matches },
    }),
  );
}

main();
