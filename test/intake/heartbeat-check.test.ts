import { describe, expect, it } from "vitest";
import { createGapTracker } from "../../src/intake/gap-tracker.js";
import { createWatermarks } from "../../src/intake/watermark.js";
import { checkHeartbeats, heartbeatCheckEveryMs } from "../../src/intake/heartbeat-check.js";
import { sourceConfigSchema } from "../../src/intake/source.config.js";
import type { TopicInfo } from "../../src/intake/topic-notification.js";
import { manualClock } from "../../src/shared/clock.js";
import { createMetrics } from "../../src/shared/metrics.js";
import { captureLogs } from "../support/log-capture.js";
import { ownedQueues, testRedisUrl } from "../support/redis-prefix.js";
import { startTestService } from "../support/start-test-service.js";

const source = (heartbeatSeconds?: number) =>
  sourceConfigSchema.parse({
    auth: { type: "bearer", token: "hb-test-token-0123456789" },
    subscription: { style: "backport-r4", payload: "id-only", topicUrl: "http://hl7.org/SubscriptionTopic/appointment", ...(heartbeatSeconds !== undefined ? { heartbeatSeconds } : {}) },
  });
const heartbeat = (subscriptionRef: string): TopicInfo => ({ subscriptionRef, type: "heartbeat", status: "active", eventsSinceStart: "12", eventNumbers: [] });

describe("a topic subscription that stops sending heartbeats", () => {
  it("is alerted and caught up by search once silent for 1.5 heartbeat periods, one search per source however many checks", async () => {
    const { redis, prefix, queues } = ownedQueues();
    const gaps = createGapTracker(redis, prefix);
    const clock = manualClock("2026-11-25T10:00:00Z");
    const logs = captureLogs("info");
    const metrics = createMetrics({ defaultMetrics: false });
    const check = checkHeartbeats({ sources: { ehr: source(60), legacy: source() }, gaps, marks: createWatermarks(redis, prefix), queues, clock, log: logs.log, metrics });
    const catchUps = async () => (await queues.byName.intake.getJobs(["waiting"])).filter((j) => j.name === "catch-up").map((j) => j.data as unknown);

    await gaps.observe("ehr", heartbeat("Subscription/appt"), clock.now());
    await gaps.observe("ehr", heartbeat("Subscription/lab"), clock.now());
    await gaps.observe("legacy", heartbeat("Subscription/old"), clock.now());

    clock.advance(80_000); // 1.33 periods: still fine
    expect(await check()).toBe("silent 0");
    await gaps.observe("ehr", heartbeat("Subscription/lab"), clock.now());

    clock.advance(20_000); // appt silent for 100 s > 90 s; lab heard 20 s ago; legacy has no heartbeat period
    expect(await check()).toBe("silent 1");
    clock.advance(30_000);
    expect(await check()).toBe("silent 1");

    expect(await catchUps()).toEqual([{ source: "ehr", reason: "heartbeat-missed", receivedAt: "2026-11-25T10:01:40.000Z" }]);
    expect((await metrics.registry.getSingleMetric("fhir_notify_subscription_heartbeats_missed_total")?.get())?.values).toEqual([{ labels: { source: "ehr" }, value: 2 }]);
    const alert = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === "subscription-silent");
    expect(alert).toMatchObject({ level: 40, source: "ehr", subscription: "Subscription/appt", silentForSeconds: 100 });
  });

  it("is checked every half heartbeat period of the shortest one, between 10 s and 5 minutes", () => {
    const quietHook = sourceConfigSchema.parse({ auth: { type: "none" }, silenceCatchUpSeconds: 600 });
    expect(heartbeatCheckEveryMs({ a: source(3_600), b: quietHook })).toBe(300_000);
    expect(heartbeatCheckEveryMs({ b: { ...quietHook, silenceCatchUpSeconds: 60 } })).toBe(30_000);
    expect(heartbeatCheckEveryMs({ b: { ...quietHook, mode: "poll" } })).toBeUndefined();
    expect(heartbeatCheckEveryMs({ a: source(60), b: source(120) })).toBe(30_000);
    expect(heartbeatCheckEveryMs({ a: source(5) })).toBe(10_000);
    expect(heartbeatCheckEveryMs({ a: source(3_600) })).toBe(300_000);
    expect(heartbeatCheckEveryMs({ a: source() })).toBeUndefined();
  });
});

describe("a rest-hook channel that goes quiet", () => {
  it("is caught up by search once nothing was pushed for silenceCatchUpSeconds, and not while pushes keep coming", async () => {
    const { redis, prefix, queues } = ownedQueues();
    const marks = createWatermarks(redis, prefix);
    const clock = manualClock("2026-11-25T10:00:00Z");
    const logs = captureLogs("info");
    const hook = (silenceCatchUpSeconds?: number) => sourceConfigSchema.parse({ auth: { type: "bearer", token: "hb-test-token-0123456789" }, ...(silenceCatchUpSeconds !== undefined ? { silenceCatchUpSeconds } : {}) });
    const check = checkHeartbeats({ sources: { medplum: hook(600), quiet: hook() }, gaps: createGapTracker(redis, prefix), marks, queues, clock, log: logs.log, metrics: createMetrics({ defaultMetrics: false }) });
    const catchUps = async () => (await queues.byName.intake.getJobs(["waiting"])).filter((j) => j.name === "catch-up").map((j) => j.data as unknown);

    await marks.touch("medplum", clock.now());
    clock.advance(599_000);
    await check();
    expect(await catchUps()).toEqual([]);

    clock.advance(2_000); // 601 s without a pushed notification
    await check();
    expect(await catchUps()).toEqual([{ source: "medplum", reason: "silence", receivedAt: "2026-11-25T10:10:01.000Z" }]);
    const alert = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === "channel-silent");
    expect(alert).toMatchObject({ source: "medplum", silentForSeconds: 601 });
  });
});

describe("the heartbeat check's schedule", () => {
  it("is set up where a source has heartbeats, and dropped when a later start has none", async () => {
    const withHeartbeats = { sources: { ehr: { auth: { type: "bearer", token: "hb-test-token-0123456789" }, subscription: { style: "backport-r4", payload: "id-only", topicUrl: "http://hl7.org/SubscriptionTopic/appointment", heartbeatSeconds: 60 } } } };
    const first = await startTestService({ config: withHeartbeats });
    const schedulers = async (service: typeof first) => (await service.queues.byName.intake.getJobSchedulers()).map((s) => ({ key: s.key, every: s.every }));
    expect(await schedulers(first)).toEqual([{ key: "check-heartbeats", every: 30_000 }]);
    await first.stop();

    // The same Redis prefix, restarted without heartbeats: the scheduler stored in Redis goes.
    const second = await startTestService({ config: { redis: { url: testRedisUrl, prefix: first.config.redis.prefix } } });
    expect(await schedulers(second)).toEqual([]);
  });
});
