import { Redis } from "ioredis";
import { describe, expect, it, onTestFinished } from "vitest";
import { createLedger, type DeliveryFields } from "../../src/delivery/ledger.js";
import { ownedRedisPrefix, testRedisUrl } from "../support/redis-prefix.js";

function connect(): Redis {
  const redis = new Redis(testRedisUrl);
  onTestFinished(async () => {
    await redis.quit();
  });
  return redis;
}

const fieldsFor = (n: number): DeliveryFields => ({
  deliveryId: `dlv_ehr_appointment-booked_Appointment_a${n}_0123456789abcdef`,
  source: "ehr",
  ruleId: "appointment-booked",
  rulesHash: "h1",
  templateName: "appointment_confirmation_v1",
  category: "notification",
  resourceRef: `Appointment/a${n}`,
  resourceVersion: "1",
  createdAt: "2026-11-25T10:00:00.000Z",
  updatedAt: "2026-11-25T10:00:00.000Z",
  inFlightSince: "2026-11-25T10:00:01.000Z",
});

describe("recording WhatsApp's acceptance of a send", () => {
  it("stores the event and the wamid, indexes the wamid, clears the in-flight mark and settles the pending entry", async () => {
    const redis = connect();
    const ledger = createLedger(redis, ownedRedisPrefix(redis));
    const fields = fieldsFor(1);
    await ledger.create(fields);
    const event = { state: "accepted" as const, at: "2026-11-25T10:00:02.000Z" };

    await ledger.recordAccepted(fields, "wamid.HBgLMTIwMjU1NTAxMjMVAgARGBI", event);
    // A retried acceptance (the worker crashed after the script ran) changes nothing.
    await ledger.recordAccepted(fields, "wamid.HBgLMTIwMjU1NTAxMjMVAgARGBI", event);

    const record = await ledger.get(fields.deliveryId);
    expect(record).toMatchObject({ state: "accepted", wamid: "wamid.HBgLMTIwMjU1NTAxMjMVAgARGBI", sentAt: event.at });
    expect(record?.history).toEqual([event]);
    expect(record?.inFlightSince).toBeUndefined();
    expect(await ledger.byWamid("wamid.HBgLMTIwMjU1NTAxMjMVAgARGBI")).toBe(fields.deliveryId);
    expect(await ledger.pending("ehr", "appointment-booked", "Appointment/a1")).toEqual([]);
  });

  it("is never seen half done: a reader that sees the accepted state also sees the wamid", async () => {
    const writer = connect();
    const reader = connect();
    const prefix = ownedRedisPrefix(writer);
    const writes = createLedger(writer, prefix);
    const reads = createLedger(reader, prefix);
    const count = 300;
    for (let n = 0; n < count; n++) await writes.create(fieldsFor(n));

    let accepting = true;
    const halfDone: string[] = [];
    const poll = (async () => {
      while (accepting) {
        const seen = await Promise.all(Array.from({ length: 20 }, () => reads.get(fieldsFor(Math.floor(Math.random() * count)).deliveryId)));
        for (const record of seen) if (record?.state === "accepted" && record.wamid === undefined) halfDone.push(record.deliveryId);
      }
    })();
    for (let n = 0; n < count; n++) {
      await writes.recordAccepted(fieldsFor(n), `wamid.${n}`, { state: "accepted", at: "2026-11-25T10:00:02.000Z" });
    }
    accepting = false;
    await poll;
    expect(halfDone).toEqual([]);
  });
});
