import { configSchema } from "../src/config/config.schema.js";
import { startService } from "../src/service.js";
import { systemClock } from "../src/shared/clock.js";
import { createLogger } from "../src/shared/logger.js";
import { createMetrics } from "../src/shared/metrics.js";
import { IndexedFhir } from "./indexed-fhir.js";

/**
 * Child process of startAuditWorkerProcess(): a worker-role fhir-notify serving only the audit
 * queue (WORKER_QUEUES=audit), writing Communications to its own in-memory FHIR store.
 */
const { redisUrl, prefix } = JSON.parse(process.env.FN_BENCH_AUDIT ?? "{}") as { redisUrl: string; prefix: string };
const config = configSchema.parse({
  http: { port: 0 },
  log: { level: "silent" },
  redis: { url: redisUrl, prefix },
  fhir: { baseUrl: "http://127.0.0.1:9/fhir" },
  mapping: { consent: { mode: "none" } },
  workers: { queues: ["audit"] },
});
const service = await startService({ config, fhir: new IndexedFhir([]), log: createLogger("silent"), clock: systemClock, role: "worker", metrics: createMetrics({ defaultMetrics: false }) });
process.on("message", (m: { op: "stop" }) => {
  if (m.op === "stop") void service.stop().then(() => process.exit(0));
});
process.send?.({ op: "ready" });
