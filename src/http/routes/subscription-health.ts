import type { Logger } from "pino";
import type { SourceConfig } from "../../intake/source.config.js";
import { unhealthySubscriptions, type HealthOptions, type ListedSubscription, type SubscriptionProblem } from "../../intake/subscriptions.js";
import type { Metrics } from "../../shared/metrics.js";

export interface SubscriptionHealthDeps {
  /** listSubscriptions against the FHIR server (ours only, found by tag). */
  list: (options: HealthOptions) => Promise<ListedSubscription[]>;
  sources: Readonly<Record<string, SourceConfig>>;
  metrics: Metrics;
  log: Logger;
  /** At most one FHIR search per this interval, however often /metrics and /readyz are hit. */
  refreshMs: number;
  /** A Subscription still `requested` this long after its last update is one the server will not activate. */
  activationGraceMs: number;
  now?: () => Date;
}

const statuses = ["requested", "active", "error", "off"] as const;
const endpointSource = /\/hooks\/fhir\/([A-Za-z0-9_-]{1,64})\/?$/;

const problemText: Record<SubscriptionProblem, string> = {
  "not-activated": "is still requested: the FHIR server has not activated it and delivers nothing (Medplum needs subscription.initialStatus: active)",
  error: "is in error on the FHIR server",
  off: "is off on the FHIR server",
};

/**
 * The server-side status of our Subscriptions (a server sets `error` or `off` when it gives up
 * delivering to us, and one that never activates leaves them `requested`; either way nothing
 * arrives). Read lazily with a long cache so probes and scrapes never add meaningful load to the
 * hospital's FHIR server. Label values are configured source names and the four R4 status codes only.
 */
export function createSubscriptionHealth(deps: SubscriptionHealthDeps) {
  const managed = Object.entries(deps.sources)
    .filter(([, cfg]) => cfg.subscription.style !== "none")
    .map(([name]) => name);
  const now = deps.now ?? (() => new Date());
  let checkedAt: number | undefined;
  let unhealthy: Array<{ source: string; problem: SubscriptionProblem }> = [];
  let inFlight: Promise<void> | undefined;

  async function refresh(): Promise<void> {
    let listed: ListedSubscription[];
    try {
      listed = await deps.list({ now: now(), activationGraceMs: deps.activationGraceMs });
    } catch (err) {
      // Keep the last known figures; FHIR reachability itself is a /readyz check of its own.
      deps.metrics.subscriptionCheckFailures.inc();
      deps.log.warn({ err: { message: (err as Error).message } }, "could not list subscriptions");
      return;
    }
    const counts = new Map<string, Record<(typeof statuses)[number], number>>(managed.map((s) => [s, { requested: 0, active: 0, error: 0, off: 0 }]));
    const problems = new Map<string, number>(managed.map((s) => [s, 0]));
    const mine = listed.flatMap((sub) => {
      // The key tag names the source; Subscriptions of older builds are matched by endpoint.
      const source = sub.source !== undefined && counts.has(sub.source) ? sub.source : endpointSource.exec(sub.endpoint ?? "")?.[1];
      return source !== undefined && counts.has(source) ? [{ ...sub, source }] : [];
    });
    for (const sub of mine) counts.get(sub.source)![sub.status] += 1;
    const found = unhealthySubscriptions(mine, deps.log).map((u) => ({ source: u.source ?? "", problem: u.problem }));
    for (const u of found) problems.set(u.source, (problems.get(u.source) ?? 0) + 1);
    deps.metrics.subscriptions.reset();
    for (const [source, row] of counts) for (const status of statuses) deps.metrics.subscriptions.set({ source, status }, row[status]);
    for (const [source, n] of problems) deps.metrics.subscriptionsUnhealthy.set({ source }, n);
    unhealthy = found;
  }

  return {
    /** Refresh when the cache is older than refreshMs; concurrent callers share one FHIR search. */
    async check(): Promise<void> {
      if (managed.length === 0) return;
      const at = Date.now();
      if (checkedAt !== undefined && at - checkedAt < deps.refreshMs) return;
      checkedAt = at;
      inFlight ??= refresh().finally(() => {
        inFlight = undefined;
      });
      await inFlight;
    },

    /** One reason per (source, problem) found by the last check. */
    async degradations(): Promise<string[]> {
      await this.check();
      const reasons = new Set(unhealthy.map((u) => `a Subscription of source ${u.source} ${problemText[u.problem]} (run: fhir-notify subscriptions sync)`));
      return [...reasons];
    },
  };
}
