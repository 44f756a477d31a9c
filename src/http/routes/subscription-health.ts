import type { Logger } from "pino";
import type { SourceConfig } from "../../intake/source.config.js";
import type { Metrics } from "../../shared/metrics.js";

export interface ListedSubscription {
  status: string;
  endpoint?: string;
}

export interface SubscriptionHealthDeps {
  /** listSubscriptions against the FHIR server (ours only, found by tag). */
  list: () => Promise<ListedSubscription[]>;
  sources: Readonly<Record<string, SourceConfig>>;
  metrics: Metrics;
  log: Logger;
  /** At most one FHIR search per this interval, however often /metrics and /readyz are hit. */
  refreshMs: number;
}

const statuses = ["requested", "active", "error", "off"] as const;
const endpointSource = /\/hooks\/fhir\/([A-Za-z0-9_-]{1,64})\/?$/;

/**
 * The server-side status of our Subscriptions (a server sets `error` or `off` when it gives up
 * delivering to us, and then nothing arrives). Read lazily with a long cache so probes and
 * scrapes never add meaningful load to the hospital's FHIR server. Label values are configured
 * source names and the four R4 status codes only.
 */
export function createSubscriptionHealth(deps: SubscriptionHealthDeps) {
  const managed = Object.entries(deps.sources)
    .filter(([, cfg]) => cfg.subscription.style !== "none")
    .map(([name]) => name);
  let checkedAt: number | undefined;
  let inError: string[] = [];
  let inFlight: Promise<void> | undefined;

  async function refresh(): Promise<void> {
    let listed: ListedSubscription[];
    try {
      listed = await deps.list();
    } catch (err) {
      // Keep the last known figures; FHIR reachability itself is a /readyz check of its own.
      deps.metrics.subscriptionCheckFailures.inc();
      deps.log.warn({ err: { message: (err as Error).message } }, "could not list subscriptions");
      return;
    }
    const counts = new Map<string, Record<(typeof statuses)[number], number>>(managed.map((s) => [s, { requested: 0, active: 0, error: 0, off: 0 }]));
    for (const sub of listed) {
      const source = endpointSource.exec(sub.endpoint ?? "")?.[1];
      const row = source !== undefined ? counts.get(source) : undefined;
      const status = statuses.find((s) => s === sub.status);
      if (row === undefined || status === undefined) continue;
      row[status] += 1;
    }
    deps.metrics.subscriptions.reset();
    for (const [source, row] of counts) for (const status of statuses) deps.metrics.subscriptions.set({ source, status }, row[status]);
    inError = [...counts].filter(([, row]) => row.error + row.off > 0).map(([source]) => source);
  }

  return {
    /** Refresh when the cache is older than refreshMs; concurrent callers share one FHIR search. */
    async check(): Promise<void> {
      if (managed.length === 0) return;
      const now = Date.now();
      if (checkedAt !== undefined && now - checkedAt < deps.refreshMs) return;
      checkedAt = now;
      inFlight ??= refresh().finally(() => {
        inFlight = undefined;
      });
      await inFlight;
    },

    /** Sources with a Subscription the server switched to error or off, as of the last check. */
    async degradations(): Promise<string[]> {
      await this.check();
      return inError.map((source) => `a Subscription of source ${source} is in error or off on the FHIR server (run: fhir-notify subscriptions sync)`);
    },
  };
}

