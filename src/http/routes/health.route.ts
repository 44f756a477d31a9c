import { Hono } from "hono";
import type { AppEnv } from "../app-env.js";
import type { Metrics } from "../../shared/metrics.js";

export interface ReadinessProbe {
  /** Hard dependencies: without them we cannot accept work. */
  redis(): Promise<boolean>;
  fhir(): Promise<boolean>;
  /** Soft problems: we accept work but something needs a human. */
  degradations(): Promise<string[]>;
  /** Known risks found at boot (e.g. a Redis without AOF): listed, but the service stays ready. */
  warnings?(): readonly string[];
}

/** /healthz (process alive), /readyz (Redis and FHIR reachable; degradations listed), /metrics. */
export function healthRoute(deps: { probe: ReadinessProbe; metrics: Metrics; refreshGauges: () => Promise<void> }): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .get("/healthz", (c) => c.json({ status: "ok" }))
    .get("/readyz", async (c) => {
      const [redis, fhir] = await Promise.all([deps.probe.redis().catch(() => false), deps.probe.fhir().catch(() => false)]);
      if (!redis || !fhir) {
        return c.json({ status: "unavailable", checks: { redis: redis ? "ok" : "unreachable", fhir: fhir ? "ok" : "unreachable" } }, 503);
      }
      const reasons = await deps.probe.degradations().catch(() => ["degradation check failed"]);
      const warnings = deps.probe.warnings?.() ?? [];
      return c.json({ status: reasons.length > 0 ? "degraded" : "ready", checks: { redis: "ok", fhir: "ok" }, reasons, ...(warnings.length > 0 ? { warnings } : {}) }, 200);
    })
    .get("/metrics", async (c) => {
      await deps.refreshGauges().catch(() => undefined);
      return c.body(await deps.metrics.registry.metrics(), 200, { "content-type": deps.metrics.registry.contentType });
    });
}
