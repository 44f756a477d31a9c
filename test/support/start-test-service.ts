import { onTestFinished } from "vitest";
import type { Logger } from "pino";
import { configSchema, type Config } from "../../src/config/config.schema.js";
import { startService, type RunningService, type ServiceOptions } from "../../src/service.js";
import { systemClock, type Clock } from "../../src/shared/clock.js";
import { createMetrics } from "../../src/shared/metrics.js";
import { newRedisPrefix, testRedisUrl } from "./redis-prefix.js";
import { captureLogs } from "./log-capture.js";

/**
 * The whole service as production builds it (sandbox FHIR over real HTTP, real Redis, dry-run
 * outbox unless a sender is given), on a free port with its own Redis prefix; stopped and cleaned
 * up when the test ends.
 */
export async function startTestService(
  overrides: { config?: Record<string, unknown>; clock?: Clock; log?: Logger } & Pick<ServiceOptions, "sender" | "fhir" | "role" | "outboxStatusDelayMs"> = {},
): Promise<RunningService & { logs: ReturnType<typeof captureLogs>; config: Config }> {
  const { prefix, cleanup } = newRedisPrefix();
  const logs = captureLogs("debug");
  const config = configSchema.parse({
    http: { port: 0 },
    redis: { url: testRedisUrl, prefix },
    log: { level: "debug" },
    ...overrides.config,
  });
  config.delivery.quietHours.enabled = false;
  const service = await startService({
    config,
    log: overrides.log ?? logs.log,
    clock: overrides.clock ?? systemClock,
    metrics: createMetrics({ defaultMetrics: false }),
    outboxStatusDelayMs: overrides.outboxStatusDelayMs ?? 20,
    ...(overrides.sender !== undefined ? { sender: overrides.sender } : {}),
    ...(overrides.fhir !== undefined ? { fhir: overrides.fhir } : {}),
    ...(overrides.role !== undefined ? { role: overrides.role } : {}),
  });
  onTestFinished(async () => {
    await service.stop();
    await cleanup();
  });
  return { ...service, logs, config };
}
