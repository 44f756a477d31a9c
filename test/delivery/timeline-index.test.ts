import { Redis } from "ioredis";
import { describe, expect, it, onTestFinished } from "vitest";
import { createLedger } from "../../src/delivery/ledger.js";
import { createTimelineIndex, withTimelineIndex, type TimelineCursor, type TimelineFilter } from "../../src/delivery/timeline-index.js";
import { confirmationFields } from "../fixtures/delivery-record.js";
import { ownedRedisPrefix, testRedisUrl } from "../support/redis-prefix.js";

function connect(): Redis {
  const redis = new Redis(testRedisUrl, { enableAutoPipelining: true });
  onTestFinished(async () => {
    await redis.quit();
  });
  return redis;
}

const at = (minute: number) => new Date(Date.UTC(2026, 10, 25, 9, 0) + minute * 60_000).toISOString();
const meta = (rule: string, template = "appointment_confirmation_v1") => ({ ruleId: rule, templateName: template, source: "ehr", resourceType: "Appointment" });

async function walk(index: ReturnType<typeof createTimelineIndex>, filter: TimelineFilter, size: number): Promise<string[]> {
  const seen: string[] = [];
  let cursor: TimelineCursor | undefined;
  for (let guard = 0; guard < 1000; guard++) {
    const page = await index.page(filter, cursor, size);
    seen.push(...page.ids);
    if (page.next === undefined) return seen;
    cursor = page.next;
  }
  throw new Error("paging did not end");
}

describe("the console's timeline index", () => {
  it("pages newest first through every delivery once, ties on the same millisecond included", async () => {
    const redis = connect();
    const index = createTimelineIndex(redis, ownedRedisPrefix(redis));
    // 30 deliveries, three per minute: paging by 7 cuts through runs of equal scores.
    const ids = Array.from({ length: 30 }, (_, n) => `dlv_${String(n).padStart(2, "0")}`);
    await Promise.all(ids.map((id, n) => index.add(id, at(Math.floor(n / 3)), meta("appointment-booked"))));

    const seen = await walk(index, {}, 7);

    expect(seen).toHaveLength(30);
    expect(new Set(seen).size).toBe(30);
    expect(seen.slice(0, 3).sort()).toEqual(["dlv_27", "dlv_28", "dlv_29"]);
  });

  it("files each delivery under its state's group, moves it only upwards, and counts per group", async () => {
    const redis = connect();
    const index = createTimelineIndex(redis, ownedRedisPrefix(redis));
    await index.add("a", at(1), meta("r1"));
    await index.add("b", at(2), meta("r1"));
    await index.add("c", at(3), meta("r2"));
    await index.observe("a", "sent");
    await index.observe("a", "read");
    // A late "sent" after "read" (webhooks out of order) leaves it read, as the ledger's fold does.
    await index.observe("a", "sent");
    await index.observe("b", "not-done");
    await index.setReason("b", "no-consent");

    expect((await index.page({ group: "read" }, undefined, 10)).ids).toEqual(["a"]);
    expect((await index.page({ group: "waiting" }, undefined, 10)).ids).toEqual(["c"]);
    expect((await index.page({ reason: "no-consent" }, undefined, 10)).ids).toEqual(["b"]);
    expect((await index.page({ ruleId: "r1" }, undefined, 10)).ids).toEqual(["b", "a"]);
    expect((await index.page({ ruleId: "r1", fromMs: Date.parse(at(2)) }, undefined, 10)).ids).toEqual(["b"]);
    const counts = await index.counts({});
    expect(counts.total).toBe(3);
    expect(counts.byGroup).toMatchObject({ read: 1, "not-done": 1, waiting: 1, sent: 0 });
    expect((await index.counts({ toMs: Date.parse(at(2)) })).total).toBe(2);
  });

  it("a filter that skips many stops after a bounded scan and says where to go on", async () => {
    const redis = connect();
    const index = createTimelineIndex(redis, ownedRedisPrefix(redis));
    await index.add("rare", at(0), meta("rare-rule"));
    const pipeline = Array.from({ length: 6_000 }, (_, n) => index.add(`common_${n}`, at(1 + n / 1000), meta("common")));
    await Promise.all(pipeline);

    const first = await index.page({ ruleId: "rare-rule" }, undefined, 10);
    expect(first).toMatchObject({ ids: [], partial: true, scanned: 5_000 });
    const second = await index.page({ ruleId: "rare-rule" }, first.next, 10);
    expect(second.ids).toEqual(["rare"]);
  });

  it("the ledger wrapper keeps the index in step with creates, statuses and reasons, and a retried create heals a missed index write", async () => {
    const redis = connect();
    const prefix = ownedRedisPrefix(redis);
    const plain = createLedger(redis, prefix);
    const index = createTimelineIndex(redis, prefix);
    const ledger = withTimelineIndex(plain, index);

    const sent = confirmationFields(1);
    await ledger.create(sent);
    await ledger.recordAccepted(sent, "wamid.HBgLMTIwMjU1NTAxMjMVAgARGBI", { state: "accepted", at: "2026-11-25T10:00:02.000Z" }, Date.parse("2026-11-26T10:00:00.000Z"));
    await ledger.applyStatus(sent.deliveryId, "wamid.HBgLMTIwMjU1NTAxMjMVAgARGBI", { state: "delivered", at: "2026-11-25T10:00:05.000Z" });

    const declined = confirmationFields(2);
    await ledger.create(declined);
    await ledger.set(declined.deliveryId, { reason: "opted-out" });
    await ledger.append(declined.deliveryId, { state: "not-done", at: "2026-11-25T10:00:03.000Z" });

    // Written by the bare ledger (a crash right after its write): the retried create indexes it.
    const missed = confirmationFields(3);
    await plain.create(missed);
    expect(await ledger.create(missed)).toBe(false);

    expect((await index.page({ group: "delivered" }, undefined, 10)).ids).toEqual([sent.deliveryId]);
    expect((await index.page({ group: "not-done", reason: "opted-out" }, undefined, 10)).ids).toEqual([declined.deliveryId]);
    expect((await index.page({ group: "waiting" }, undefined, 10)).ids).toEqual([missed.deliveryId]);
  });

  it("backfills deliveries recorded before the index existed, once", async () => {
    const redis = connect();
    const prefix = ownedRedisPrefix(redis);
    const plain = createLedger(redis, prefix);
    const old = confirmationFields(1);
    await plain.create(old);
    await plain.append(old.deliveryId, { state: "failed", at: "2026-11-25T10:00:03.000Z", code: 131026 });
    const index = createTimelineIndex(redis, prefix);

    expect(await index.backfill(plain)).toBe(1);
    expect(await index.backfill(plain)).toBe(0);
    expect((await index.page({ group: "failed" }, undefined, 10)).ids).toEqual([old.deliveryId]);
  });

  it("drops entries far older than the retention as new ones arrive", async () => {
    const redis = connect();
    const index = createTimelineIndex(redis, ownedRedisPrefix(redis), 3600);
    await index.add("ancient", at(0), meta("r1"));
    await index.add("fresh", at(3 * 60), meta("r1"));
    expect((await index.page({}, undefined, 10)).ids).toEqual(["fresh"]);
    expect((await index.counts({})).byGroup.waiting).toBe(1);
  });
});
