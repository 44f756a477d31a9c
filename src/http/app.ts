import { Hono, type Context } from "hono";
import type { Logger } from "pino";
import type { AppEnv } from "./app-env.js";
import { AppError } from "../shared/app-error.js";
import { errorHandler } from "./errors.js";
import { requestContext } from "./middleware/request-context.middleware.js";
import { adminAuth } from "./middleware/admin-auth.middleware.js";
import { fhirHooksRoute } from "./routes/fhir-hooks.route.js";
import { whatsappWebhookRoute } from "./routes/whatsapp-webhook.route.js";
import { healthRoute, type ReadinessProbe } from "./routes/health.route.js";
import { adminRoute, type AdminDeps } from "./routes/admin.route.js";
import { consoleRoute, type ConsoleDeps } from "../console/console.route.js";
import type { Intake } from "../intake/accept.js";
import type { WebhookIntake } from "../delivery/webhook-intake.js";
import type { Clock } from "../shared/clock.js";
import type { Metrics } from "../shared/metrics.js";

export interface AppDeps {
  log: Logger;
  clock: Clock;
  metrics: Metrics;
  intake: Intake;
  webhook: WebhookIntake;
  verifyToken: string | undefined;
  adminToken: string | undefined;
  admin: AdminDeps;
  probe: ReadinessProbe;
  refreshGauges: () => Promise<void>;
  bodyLimitBytes: number;
  webhookBodyLimitBytes: number;
  /** The embedded sandbox FHIR server, when no FHIR_BASE_URL is configured. */
  sandbox?: Hono;
  /** The web console at /console, behind the same rule as /admin (its guard is in src/console). */
  console?: ConsoleDeps;
}

/** Production and tests build the same app from the same dependencies (house style rule 1). */
export function buildApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(requestContext(deps.log));
  app.route("/hooks/fhir", fhirHooksRoute({ intake: deps.intake, clock: deps.clock, bodyLimitBytes: deps.bodyLimitBytes }));
  app.route("/hooks/whatsapp", whatsappWebhookRoute({ webhook: deps.webhook, verifyToken: deps.verifyToken, clock: deps.clock, bodyLimitBytes: deps.webhookBodyLimitBytes }));
  app.route("/", healthRoute({ probe: deps.probe, metrics: deps.metrics, refreshGauges: deps.refreshGauges }));
  app.use("/admin/*", adminAuth(deps.adminToken));
  app.route("/admin", adminRoute(deps.admin, deps.bodyLimitBytes));
  if (deps.console !== undefined) app.route("/console", consoleRoute(deps.console));
  if (deps.sandbox !== undefined) mountApart(app, "/sandbox/fhir", deps.sandbox, deps.log);
  app.notFound(() => {
    throw new AppError("not-found", "no such route");
  });
  app.onError(errorHandler(deps.log));
  return app;
}

/**
 * Mount `sub` under `path` in an app of its own, reached through two forwarding routes. For
 * sub-apps whose route patterns Hono's RegExpRouter cannot compile (Bull Board's, the sandbox FHIR
 * server's `/:type/_history` beside `/:type/:id`): mounted
 * directly, they would make the root's SmartRouter fall back to the TrieRouter for every request,
 * the FHIR hooks included.
 */
export function mountApart(app: Hono<AppEnv>, path: string, sub: Hono, log: Logger): void {
  const inner = new Hono<AppEnv>().route(path, sub);
  inner.onError(errorHandler(log));
  const forward = (c: Context<AppEnv>) => inner.fetch(c.req.raw, c.env);
  app.all(path, forward).all(`${path}/*`, forward);
}

/**
 * What a worker-role process serves: liveness, readiness and its own /metrics (its counters for
 * sends, write-backs and latencies exist only in its memory), and nothing that accepts work.
 */
export function buildOpsApp(deps: Pick<AppDeps, "log" | "metrics" | "probe" | "refreshGauges">): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(requestContext(deps.log));
  app.route("/", healthRoute({ probe: deps.probe, metrics: deps.metrics, refreshGauges: deps.refreshGauges }));
  app.notFound(() => {
    throw new AppError("not-found", "no such route");
  });
  app.onError(errorHandler(deps.log));
  return app;
}
