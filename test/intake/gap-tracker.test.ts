import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createGapTracker } from "../../src/intake/gap-tracker.js";
import type { TopicInfo } from "../../src/intake/topic-notification.js";
import { ownedRedisPrefix } from "../support/redis-prefix.js";

const redis = new Redis("redis://127.0.0.1:6379", { maxRetriesPerRequest: 1 });
afterAll(async () => {
  await redis.quit();
});


const sub = "Subscription/fn-appt";
const at = (iso: string) => new Date(iso);
const handshake: TopicInfo = { subscriptionRef: sub, type: "handshake", status: "requested", eventsSinceStart: "0", eventNumbers: [] };
const event = (n: number): TopicInfo => ({ subscriptionRef: sub, type: "event-notification", status: "active", eventsSinceStart: String(n), eventNumbers: [String(n)] });
const heartbeat = (total: number): TopicInfo => ({ subscriptionRef: sub, type: "heartbeat", status: "active", eventsSinceStart: String(total), eventNumbers: [] });

describe("gap tracker", () => {
  it("reports nothing while events arrive one after another from the handshake on", async () => {
    const gaps = createGapTracker(redis, ownedRedisPrefix(redis));
    expect(await gaps.observe("ehr", handshake, at("2025-03-01T08:00:00Z"))).toEqual({ missing: [] });
    expect(await gaps.observe("ehr", event(1), at("2025-03-01T08:01:00Z"))).toEqual({ missing: [] });
    expect(await gaps.observe("ehr", event(2), at("2025-03-01T08:02:00Z"))).toEqual({ missing: [] });
    expect(await gaps.observe("ehr", heartbeat(2), at("2025-03-01T09:00:00Z"))).toEqual({ missing: [] });
  });

  it("reports the skipped number when 317 is followed by 319", async () => {
    const gaps = createGapTracker(redis, ownedRedisPrefix(redis));
    await gaps.observe("ehr", event(317), at("2025-03-04T09:00:00Z"));
    expect(await gaps.observe("ehr", event(319), at("2025-03-04T09:15:00Z"))).toEqual({ missing: [{ from: 318, to: 318 }] });
  });

  it("does not report a late event again once a later one moved the mark", async () => {
    const gaps = createGapTracker(redis, ownedRedisPrefix(redis));
    await gaps.observe("ehr", event(317), at("2025-03-04T09:00:00Z"));
    await gaps.observe("ehr", event(319), at("2025-03-04T09:15:00Z"));
    expect(await gaps.observe("ehr", event(318), at("2025-03-04T09:15:01Z"))).toEqual({ missing: [] });
    expect(await gaps.observe("ehr", event(320), at("2025-03-04T09:16:00Z"))).toEqual({ missing: [] });
  });

  it("reports events a heartbeat counts but that never arrived", async () => {
    const gaps = createGapTracker(redis, ownedRedisPrefix(redis));
    await gaps.observe("ehr", event(310), at("2025-03-04T08:00:00Z"));
    expect(await gaps.observe("ehr", heartbeat(318), at("2025-03-04T09:00:00Z"))).toEqual({ missing: [{ from: 311, to: 318 }] });
  });

  it("reports holes inside one notification that carries several events", async () => {
    const gaps = createGapTracker(redis, ownedRedisPrefix(redis));
    await gaps.observe("ehr", event(10), at("2025-03-04T08:00:00Z"));
    const batch: TopicInfo = { ...event(15), eventNumbers: ["11", "13", "15"] };
    expect(await gaps.observe("ehr", batch, at("2025-03-04T08:05:00Z"))).toEqual({
      missing: [
        { from: 12, to: 12 },
        { from: 14, to: 14 },
      ],
    });
  });

  it("proves no gap on the first notification it ever sees for a subscription", async () => {
    const gaps = createGapTracker(redis, ownedRedisPrefix(redis));
    expect(await gaps.observe("ehr", event(500), at("2025-03-04T08:00:00Z"))).toEqual({ missing: [] });
  });

  it("keeps sources and subscriptions apart", async () => {
    const gaps = createGapTracker(redis, ownedRedisPrefix(redis));
    await gaps.observe("ehr", event(5), at("2025-03-04T08:00:00Z"));
    await gaps.observe("lab", event(1), at("2025-03-04T08:00:00Z"));
    expect(await gaps.observe("lab", event(2), at("2025-03-04T08:01:00Z"))).toEqual({ missing: [] });
    expect(await gaps.observe("ehr", { ...event(9), subscriptionRef: "Subscription/other" }, at("2025-03-04T08:01:00Z"))).toEqual({ missing: [] });
    expect(await gaps.observe("ehr", event(6), at("2025-03-04T08:02:00Z"))).toEqual({ missing: [] });
  });

  it("remembers the last contact per subscription, including heartbeats", async () => {
    const gaps = createGapTracker(redis, ownedRedisPrefix(redis));
    expect(await gaps.lastContact("ehr", sub)).toBeUndefined();
    await gaps.observe("ehr", handshake, at("2025-03-01T08:00:00Z"));
    await gaps.observe("ehr", heartbeat(0), at("2025-03-01T09:00:00.250Z"));
    expect(await gaps.lastContact("ehr", sub)).toEqual(at("2025-03-01T09:00:00.250Z"));
    expect(await gaps.lastContact("lab", sub)).toBeUndefined();
  });

  it("writes its keys under the given prefix only", async () => {
    const prefix = ownedRedisPrefix(redis);
    await createGapTracker(redis, prefix).observe("ehr", handshake, at("2025-03-01T08:00:00Z"));
    const keys = await redis.keys(`${prefix}:*`); // one SCAN page would only sample a busy shared Redis
    // The subscription's mark, and the source's list of subscriptions (for the heartbeat check).
    expect(keys.sort()).toEqual([`${prefix}:intake:topic:ehr:${sub}`, `${prefix}:intake:topics:ehr`]);
    for (const key of keys) expect(await redis.pttl(key)).toBeGreaterThan(0);
  });
});
