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

/**
 * Keys that occur twice in one JSON object of a log line (pino writes a child binding and a call
 * field of the same name both; JSON.parse would silently keep the last). Paths like "err.message".
 */
export function repeatedKeys(line: string): string[] {
  const repeated: string[] = [];
  let i = 0;
  const ws = () => {
    while (/\s/.test(line[i] ?? "")) i++;
  };
  const str = (): string => {
    const start = i;
    i++;
    while (line[i] !== '"') i += line[i] === "\\" ? 2 : 1;
    i++;
    return JSON.parse(line.slice(start, i)) as string;
  };
  const value = (path: string): void => {
    ws();
    const c = line[i];
    if (c === "{") {
      i++;
      const seen = new Set<string>();
      ws();
      while (line[i] !== "}") {
        ws();
        const key = str();
        if (seen.has(key)) repeated.push(path + key);
        seen.add(key);
        ws();
        i++; // :
        value(`${path}${key}.`);
        ws();
        if (line[i] === ",") i++;
        ws();
      }
      i++;
    } else if (c === "[") {
      i++;
      ws();
      while (line[i] !== "]") {
        value(path);
        ws();
        if (line[i] === ",") i++;
        ws();
      }
      i++;
    } else if (c === '"') str();
    else while (i < line.length && !/[,}\]\s]/.test(line[i] ?? "")) i++;
  };
  value("");
  return repeated;
}
