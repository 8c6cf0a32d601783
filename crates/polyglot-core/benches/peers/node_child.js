// The peer's worker: newline-delimited JSON over stdio, as a Node.js module host would
// write it. Echoes params as the result.
const readline = require("readline");
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const req = JSON.parse(line);
  process.stdout.write(JSON.stringify({ id: req.id, result: req.params, timestamp: Date.now() }) + "\n");
});
rl.on("close", () => process.exit(0));
