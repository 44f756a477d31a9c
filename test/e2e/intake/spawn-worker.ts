import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { onTestFinished } from "vitest";

const script = fileURLToPath(new URL("./worker-process.ts", import.meta.url));

export interface WorkerProcess {
  child: ChildProcess;
  /** stdout + stderr so far (pino JSON lines), for diagnostics and log assertions. */
  output: () => string;
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** Start a worker-role service in its own process and wait until its workers run. */
export async function spawnWorker(config: Record<string, unknown>): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    env: { ...process.env, FN_WORKER_CONFIG: JSON.stringify(config) },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  let out = "";
  child.stdout?.on("data", (b: Buffer) => (out += b.toString("utf8")));
  child.stderr?.on("data", (b: Buffer) => (out += b.toString("utf8")));
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  onTestFinished(() => kill("SIGKILL"));
  await new Promise<void>((ready, fail) => {
    child.once("message", () => ready());
    child.once("exit", (code) => fail(new Error(`worker process exited with ${String(code)} before it was ready:\n${out}`)));
  });
  return { child, output: () => out, kill };
}
