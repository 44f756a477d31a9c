import type { Logger } from "pino";

export type Step = readonly [name: string, stop: () => Promise<unknown>];

/** Run stop steps once, in order; a failing step is logged and the next one still runs. */
export async function runSteps(log: Logger, steps: readonly Step[]): Promise<void> {
  for (const [step, stop] of steps) {
    await stop().catch((err: unknown) => log.error({ err, step }, "stop failed"));
  }
}

/**
 * The only place that touches process signals. SIGTERM/SIGINT run the steps in order under a grace
 * timer; a second signal or the timer ends the process at once.
 */
export function registerShutdown(log: Logger, graceMs: number, steps: () => readonly Step[]): void {
  let started = false;
  const run = async (signal: string) => {
    if (started) {
      log.warn({ signal }, "second signal; exiting now");
      process.exit(1);
    }
    started = true;
    log.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      log.error({ signal, graceMs }, "shutdown timed out");
      process.exit(1);
    }, graceMs);
    timer.unref();
    await runSteps(log, steps());
    clearTimeout(timer);
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void run("SIGTERM"));
  process.on("SIGINT", () => void run("SIGINT"));
}
