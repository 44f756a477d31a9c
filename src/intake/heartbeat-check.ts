import type { Logger } from "pino";
import type { Queues } from "../delivery/queues.js";
import type { Clock } from "../shared/clock.js";
import type { Metrics } from "../shared/metrics.js";
import { catchUpDeduplicationId } from "./accept.js";
import type { GapTracker } from "./gap-tracker.js";
import type { SourceConfig } from "./source.config.js";
import type { Watermarks } from "./watermark.js";

/** Silence for longer than this many heartbeat periods means a broken channel (reference §5.6). */
export const missedAfterPeriods = 1.5;

export interface HeartbeatCheckDeps {
  sources: Readonly<Record<string, SourceConfig>>;
  gaps: GapTracker;
  marks: Pick<Watermarks, "lastPush">;
  queues: Queues;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
}

/**
 * The check-heartbeats job: a topic subscription that sent neither an event nor a heartbeat for
 * 1.5 heartbeat periods may be losing notifications, so it is alerted (log + metric) and a
 * catch-up search runs from the source's cursor, as for an empty ping. While the silence lasts,
 * every check searches again: the source is effectively polled until the channel comes back.
 * Only subscriptions heard from before are expected; `subscriptions list` shows the others.
 */
export function checkHeartbeats(deps: HeartbeatCheckDeps) {
  return async (): Promise<string> => {
    let silent = 0;
    for (const [source, cfg] of Object.entries(deps.sources)) {
      const now = deps.clock.now();
      if (await channelSilent(deps, source, cfg, now)) {
        await deps.queues.enqueue("catch-up", { source, reason: "silence", receivedAt: now.toISOString() }, { deduplication: { id: catchUpDeduplicationId(source) } });
      }
      const periodSeconds = cfg.subscription.heartbeatSeconds;
      if (periodSeconds === undefined) continue;
      const quiet = await deps.gaps.silent(source, periodSeconds * 1000 * missedAfterPeriods, now);
      for (const { subscriptionRef, silentForMs } of quiet) {
        deps.metrics.heartbeatsMissed.inc({ source });
        deps.log.warn(
          { event: "subscription-silent", source, subscription: subscriptionRef, silentForSeconds: Math.round(silentForMs / 1000) },
          "no notification or heartbeat for 1.5 heartbeat periods; catching up by search",
        );
      }
      if (quiet.length > 0) {
        silent += quiet.length;
        await deps.queues.enqueue("catch-up", { source, reason: "heartbeat-missed", receivedAt: now.toISOString() }, { deduplication: { id: catchUpDeduplicationId(source) } });
      }
    }
    return `silent ${silent}`;
  };
}

/**
 * `silenceCatchUpSeconds` (any push channel): no pushed notification processed for that long. A
 * source never heard from counts as silent: a channel broken from the start must be caught too.
 */
async function channelSilent(deps: HeartbeatCheckDeps, source: string, cfg: SourceConfig, now: Date): Promise<boolean> {
  if (cfg.mode !== "push" || cfg.silenceCatchUpSeconds === undefined) return false;
  const last = await deps.marks.lastPush(source);
  const silentForMs = last === undefined ? undefined : now.getTime() - last.getTime();
  if (silentForMs !== undefined && silentForMs <= cfg.silenceCatchUpSeconds * 1000) return false;
  deps.log.info(
    { event: "channel-silent", source, ...(silentForMs !== undefined ? { silentForSeconds: Math.round(silentForMs / 1000) } : {}) },
    "no notification for longer than silenceCatchUpSeconds; catching up by search",
  );
  return true;
}

/**
 * How often to look: half the shortest heartbeat period or silence interval, between 10 s and 5
 * minutes; none without either.
 */
export function heartbeatCheckEveryMs(sources: Readonly<Record<string, SourceConfig>>): number | undefined {
  const periods = Object.values(sources).flatMap((s) => [
    ...(s.subscription.heartbeatSeconds !== undefined ? [s.subscription.heartbeatSeconds] : []),
    ...(s.mode === "push" && s.silenceCatchUpSeconds !== undefined ? [s.silenceCatchUpSeconds] : []),
  ]);
  if (periods.length === 0) return undefined;
  return Math.min(300_000, Math.max(10_000, (Math.min(...periods) * 1000) / 2));
}
