/**
 * A worker-role service in its own process, for the crash test: config comes as JSON in
 * FHIR_NOTIFY_TEST_CONFIG; "ready" on stdout once the workers run. The parent SIGKILLs it.
 */
import { configSchema } from "../../../src/config/config.schema.js";
import { startService } from "../../../src/service.js";
import { systemClock } from "../../../src/shared/clock.js";
import { createLogger } from "../../../src/shared/logger.js";
import { createMetrics } from "../../../src/shared/metrics.js";

const config = configSchema.parse(JSON.parse(process.env.FHIR_NOTIFY_TEST_CONFIG ?? "{}"));
const service = await startService({
  config,
  log: createLogger("error"),
  clock: systemClock,
  role: "worker",
  metrics: createMetrics({ defaultMetrics: false }),
  workerLocks: { lockDurationMs: 2_000, stalledIntervalMs: 1_000 },
});
process.on("SIGTERM", () => {
  void service.stop().then(() => process.exit(0));
});
process.stdout.write("ready\n");
