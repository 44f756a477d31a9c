/**
 * A worker-role fhir-notify process for the multi-process tests and the scale benchmark:
 * `node --import tsx test/ops/worker-process.ts` with the config (as the zod input, JSON) in
 * FHIR_NOTIFY_TEST_CONFIG. Prints "ready <url>" once its workers run; SIGTERM stops it cleanly.
 */
import { configSchema } from "../../src/config/config.schema.js";
import { startService } from "../../src/service.js";
import { systemClock } from "../../src/shared/clock.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetrics } from "../../src/shared/metrics.js";

const config = configSchema.parse(JSON.parse(process.env.FHIR_NOTIFY_TEST_CONFIG ?? "{}"));
const log = createLogger(config.log.level, process.stderr);
const service = await startService({ config, log, clock: systemClock, role: "worker", metrics: createMetrics({ defaultMetrics: false }) });
process.stdout.write(`ready ${service.url}\n`);

let stopping = false;
process.on("SIGTERM", () => {
  if (stopping) return;
  stopping = true;
  void service.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
