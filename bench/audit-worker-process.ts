import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * A second worker process that serves only the audit queue (docs/operations.md, "Dedicated workers
 * per queue"), so the bench can measure sending with Communication write-back on its own core.
 */
export function startAuditWorkerProcess(redisUrl: string, prefix: string): Promise<{ stop(): Promise<void> }> {
  const child = fork(fileURLToPath(new URL("./audit-worker.ts", import.meta.url)), [], {
    execArgv: ["--import", "tsx"],
    stdio: "inherit",
    env: { ...process.env, FN_BENCH_AUDIT: JSON.stringify({ redisUrl, prefix }) },
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`audit worker process exited with ${String(code)}`)));
    child.once("message", () =>
      resolve({
        stop: () =>
          new Promise((done) => {
            child.removeAllListeners("exit");
            child.once("exit", () => done());
            child.send({ op: "stop" });
          }),
      }),
    );
  });
}
