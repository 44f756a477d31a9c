import { Writable } from "node:stream";
import { createLogger } from "../../src/shared/logger.js";

/** A real pino logger (with the production redaction list) whose lines are kept for assertions. */
export function captureLogs(level: "info" | "debug" | "trace" = "debug") {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString("utf8").split("\n").filter((l) => l.length > 0));
      done();
    },
  });
  return { log: createLogger(level, stream), lines, text: () => lines.join("\n") };
}
