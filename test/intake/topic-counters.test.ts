import { readFileSync } from "node:fs";
import type { Bundle } from "fhir/r4";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createIntake } from "../../src/intake/accept.js";
import { createGapTracker, type GapTracker } from "../../src/intake/gap-tracker.js";
import { sourceConfigSchema } from "../../src/intake/source.config.js";
import { parseTopicBundle } from "../../src/intake/topic-notification.js";
import { createWatermarks } from "../../src/intake/watermark.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetrics } from "../../src/shared/metrics.js";
import { ownedQueues, ownedRedisPrefix, testRedisUrl } from "../support/redis-prefix.js";

const redis = new Redis(testRedisUrl, { maxRetriesPerRequest: 1 });
afterAll(async () => {
  await redis.quit();
});

/**
 * An R4B backport notification (reference §5.3, §5.5): a history Bundle whose entry[0] is a
 * SubscriptionStatus. Events are id-only with a focus on one Appointment each; the counters are
 * strings, as R4B declares them.
 */
function r4b(type: "handshake" | "heartbeat" | "event-notification", total: string, eventNumbers: string[] = []): Bundle {
  const bundle = JSON.parse(readFileSync(new URL("../fixtures/notifications/r4b-event-id-only.json", import.meta.url), "utf8")) as Bundle & { entry: Array<{ resource?: Record<string, unknown> }> };
  const status = bundle.entry[0]!.resource!;
  status.type = type;
  status.status = type === "handshake" ? "requested" : "active";
  status.eventsSinceSubscriptionStart = total;
  status.notificationEvent = eventNumbers.map((n) => ({ eventNumber: n, timestamp: "2025-03-04T09:14:58Z", focus: { reference: `https://ehr.example.org/fhir/Appointment/apt-${n}` } }));
  if (eventNumbers.length === 0) delete status.notificationEvent;
  bundle.entry = [bundle.entry[0]!, ...eventNumbers.map((n) => ({ fullUrl: `https://ehr.example.org/fhir/Appointment/apt-${n}`, request: { method: "PUT" as const, url: `Appointment/apt-${n}` }, response: { status: "200" } }))];
  return bundle;
}
const event = (n: number) => r4b("event-notification", String(n), [String(n)]);

/** Parse the bundle exactly as intake does, then hand its counters to the tracker. */
function tracker(gaps: GapTracker = createGapTracker(redis, ownedRedisPrefix(redis))) {
  let minute = 0;
  return (bundle: Bundle) => {
    const parsed = parseTopicBundle(bundle, { source: "ehr", receivedAt: "2025-03-04T09:15:02Z" });
    return gaps.observe("ehr", parsed.topic, new Date(Date.UTC(2025, 2, 4, 9, minute++)));
  };
}

describe("topic event counters (R4B backport)", () => {
  it("start a new count at a handshake: a re-created subscription's events 1, 2 are no gap, 4 after 2 is", async () => {
    const observe = tracker();
    await observe(event(318));
    await observe(event(319));
    expect(await observe(r4b("handshake", "0"))).toEqual({ missing: [] });
    expect(await observe(event(1))).toEqual({ missing: [] });
    expect(await observe(event(2))).toEqual({ missing: [] });
    expect(await observe(event(4))).toEqual({ missing: [{ from: 3, to: 3 }] });
  });

  it("treat a number below the mark outside a handshake as a restarted counter: re-based, and gaps found again from there", async () => {
    const observe = tracker();
    await observe(event(318));
    await observe(event(319));
    expect(await observe(event(1))).toEqual({ missing: [], restarted: true });
    expect(await observe(event(2))).toEqual({ missing: [] });
    expect(await observe(event(5))).toEqual({ missing: [{ from: 3, to: 4 }] });
    // A heartbeat whose running total went back is a restart too.
    expect(await observe(r4b("heartbeat", "2"))).toEqual({ missing: [], restarted: true });
    expect(await observe(r4b("heartbeat", "4"))).toEqual({ missing: [{ from: 3, to: 4 }] });
  });

  it("tell a retried notification and a late out-of-order event from a restart", async () => {
    const observe = tracker();
    await observe(event(316));
    await observe(event(317));
    expect(await observe(event(319))).toEqual({ missing: [{ from: 318, to: 318 }] });
    expect(await observe(event(319))).toEqual({ missing: [] }); // the server retried it
    expect(await observe(event(318))).toEqual({ missing: [] }); // the missing one, late
    expect(await observe(event(317))).toEqual({ missing: [] }); // an older retry
    expect(await observe(r4b("heartbeat", "319"))).toEqual({ missing: [] });
    expect(await observe(event(321))).toEqual({ missing: [{ from: 320, to: 320 }] });
  });

  it("are not put out of action by one absurd number: the next real one re-bases, and gaps are found again", async () => {
    const observe = tracker();
    await observe(event(319));
    // A glitch (or a forged counter): a jump of ~9e12 is reported as one gap (recovered by search) ...
    expect(await observe(event(9_000_000_000_000))).toEqual({ missing: [{ from: 320, to: 8_999_999_999_999 }] });
    // ... but it cannot make every later real number look like a late event below the mark.
    expect(await observe(event(320))).toEqual({ missing: [], restarted: true });
    expect(await observe(event(322))).toEqual({ missing: [{ from: 321, to: 321 }] });
  });

  it("keep counting across a notification whose counter is not a number: it is refused, the mark stays", async () => {
    const observe = tracker();
    await observe(event(319));
    expect(() => parseTopicBundle(r4b("event-notification", "three hundred twenty", ["320"]), { source: "ehr", receivedAt: "2025-03-04T09:15:02Z" })).toThrow(/SubscriptionStatus is missing a required element or has one of the wrong type/);
    expect(await observe(event(321))).toEqual({ missing: [{ from: 320, to: 320 }] });
  });
});

describe("a restarted counter at intake", () => {
  it("queues a catch-up search for the subscription after the grace period", async () => {
    const { redis: r, prefix, queues } = ownedQueues();
    const log = createLogger("silent");
    const key = "topic-key-0123456789abcdef";
    const sources = { topic: sourceConfigSchema.parse({ auth: { type: "header", name: "x-fhir-notify-key", value: key }, resourceTypes: ["Appointment"], subscription: { style: "backport-r4", payload: "id-only", topicUrl: "https://ehr.example.org/fhir/SubscriptionTopic/appointment-changed" } }) };
    const intake = createIntake({ sources, queues, gaps: createGapTracker(r, prefix), marks: createWatermarks(r, prefix), metrics: createMetrics({ defaultMetrics: false }), log });
    const post = (bundle: Bundle) => {
      const headers: Record<string, string> = { "content-type": "application/fhir+json", "x-fhir-notify-key": key };
      return intake.accept({ source: "topic", method: "POST", contentType: headers["content-type"], header: (n) => headers[n.toLowerCase()], raw: Buffer.from(JSON.stringify(bundle)), fromLoopback: false, receivedAt: "2025-03-04T09:15:02.000Z" }, () => log);
    };
    await post(event(319));
    await post(event(1));
    const catchUps = (await queues.byName.intake.getJobs(["delayed", "waiting"])).filter((j) => j.name === "catch-up");
    expect(catchUps.map((j) => j.data as unknown)).toEqual([{ source: "topic", reason: "gap", receivedAt: "2025-03-04T09:15:02.000Z", subscriptionRef: "Subscription/fn-appt" }]);
    expect(await catchUps[0]!.isDelayed()).toBe(true);
  });
});
