import type { Bundle } from "fhir/r4";
import type { Logger } from "../shared/logger.js";
import type { Poller } from "./poll.js";
import type { ResourceEvent } from "./resource-event.js";
import type { SourceConfig } from "./source.config.js";
import { parseTopicBundle, type TopicInfo } from "./topic-notification.js";

// Beyond this a search is cheaper than paging through notification bundles, and servers cap $events anyway.
const maxEventsPerRange = 1000;

/** GET of an absolute URL on the source's FHIR server; in production `fhir.fetchPage`. */
type FetchBundle = (url: string) => Promise<Bundle>;

/**
 * Recover events a topic subscription never delivered (reference §5.7): ask `$events` for the
 * missing range when configured, and fall back to a `_lastUpdated` catch-up search when the server
 * lacks the operation, fails, or no longer has the whole range.
 */
export function createRecovery(deps: { baseUrl: string; fetchBundle: FetchBundle; poller: Poller; log: Logger }) {
  async function viaEvents(source: string, topic: TopicInfo, range: { from: number; to: number }, receivedAt: string): Promise<ResourceEvent[] | undefined> {
    if (range.to - range.from >= maxEventsPerRange) return undefined;
    const url = `${deps.baseUrl.replace(/\/$/, "")}/${topic.subscriptionRef}/$events?eventsSinceNumber=${range.from}&eventsUntilNumber=${range.to}`;
    try {
      const parsed = parseTopicBundle(await deps.fetchBundle(url), { source, receivedAt });
      if (parsed.kind !== "events") return undefined;
      const got = new Set(parsed.topic.eventNumbers.map(Number));
      for (let n = range.from; n <= range.to; n++) if (!got.has(n)) return undefined; // history too short
      // An `empty` payload names no resources; only a search can find them.
      return parsed.events.length > 0 ? parsed.events : undefined;
    } catch (err) {
      deps.log.warn({ err, source, subscription: topic.subscriptionRef }, "$events failed; falling back to search");
      return undefined;
    }
  }

  return {
    async recover(source: string, cfg: SourceConfig, topic: TopicInfo, missing: ReadonlyArray<{ from: number; to: number }>, receivedAt: string): Promise<ResourceEvent[]> {
      if (missing.length === 0) return [];
      if (cfg.recoverWith === "$events") {
        const recovered: ResourceEvent[] = [];
        for (const range of missing) {
          const events = await viaEvents(source, topic, range, receivedAt);
          if (events === undefined) return deps.poller.pollOnce(source, cfg, receivedAt);
          recovered.push(...events.filter((e) => (cfg.resourceTypes as readonly string[]).includes(e.resourceType)));
        }
        return recovered;
      }
      return deps.poller.pollOnce(source, cfg, receivedAt);
    },
  };
}

export type Recovery = ReturnType<typeof createRecovery>;
