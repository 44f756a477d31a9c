/**
 * A worker-role fhir-notify process for crash tests: `node --import tsx worker-process.ts` with the
 * whole config as JSON in FN_WORKER_CONFIG. It says "ready" over IPC once its workers run; the test
 * SIGKILLs it (no cleanup at all, as in a real crash) or sends SIGTERM for an orderly stop.
 */
import { configSchema } from "../../../src/config/config.schema.js";
import { startService } from "../../../src/service.js";
import { systemClock } from "../../../src/shared/clock.js";
import { createLogger } from "../../../src/shared/logger.js";

const config = configSchema.parse(JSON.parse(process.env.FN_WORKER_CONFIG ?? "{}"));
config.delivery.quietHours.enabled = false;
const service = await startService({
  config,
  log: createLogger(config.log.level),
  clock: systemClock,
  role: "worker",
  // A killed worker's jobs are taken over after ~1.5 s instead of BullMQ's 30 s.
  workerLocks: { lockDurationMs: 1500, stalledIntervalMs: 500 },
  outboxStatusDelayMs: 20,
});
process.once("SIGTERM", () => {
  void service.stop().then(() => process.exit(0));
});
process.send?.("ready");
