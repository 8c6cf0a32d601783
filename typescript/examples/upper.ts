import { MethodError, Worker } from "@polyglot/worker";

const worker = new Worker("upper-ts", { version: "1.0.0" });
worker.method("upper", (params) => {
  const [text] = Array.isArray(params) ? params : [params];
  if (typeof text !== "string") throw new MethodError("INVALID_PARAMS", "upper takes a string");
  return text.toUpperCase();
});
void worker.serve();
