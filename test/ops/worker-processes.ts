import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export interface WorkerProcess {
  /** Its own HTTP port: /healthz, /readyz and /metrics of that process. */
  url: string;
  child: ChildProcess;
  /** stderr so far (its logs), for a failing test's message. */
  stderr(): string;
  stop(): Promise<void>;
}

const script = fileURLToPath(new URL("./worker-process.ts", import.meta.url));

/** Start one worker-role fhir-notify as a child process; resolves once its workers run. */
export function startWorkerProcess(config: Record<string, unknown>, timeoutMs = 30_000): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    env: { ...process.env, FHIR_NOTIFY_TEST_CONFIG: JSON.stringify(config) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    // Bounded: a chatty child must not grow the test's memory without limit.
    err = (err + chunk.toString("utf8")).slice(-20_000);
  });
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`worker process not ready after ${timeoutMs} ms:\n${err}`));
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`worker process exited with ${String(code)} before it was ready:\n${err}`));
    });
    createInterface({ input: child.stdout }).on("line", (line) => {
      const m = /^ready (\S+)$/.exec(line);
      if (m?.[1] === undefined) return;
      clearTimeout(timer);
      resolve({ url: m[1], child, stderr: () => err, stop });
    });
  });
}
