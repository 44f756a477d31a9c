import { Redis } from "ioredis";
import { describe, expect, it, onTestFinished } from "vitest";
import { createLedger } from "../../src/delivery/ledger.js";
import { confirmationFields } from "../fixtures/delivery-record.js";
import { ownedRedisPrefix, testRedisUrl } from "../support/redis-prefix.js";

function connect(): Redis {
  const redis = new Redis(testRedisUrl);
  onTestFinished(async () => {
    await redis.quit();
  });
  return redis;
}

const fieldsFor = (n: number) => confirmationFields(n, { inFlightSince: "2026-11-25T10:00:01.000Z" });

describe("recording WhatsApp's acceptance of a send", () => {
  it("stores the event and the wamid, indexes the wamid, clears the in-flight mark and settles the pending entry", async () => {
    const redis = connect();
    const ledger = createLedger(redis, ownedRedisPrefix(redis));
    const fields = fieldsFor(1);
    await ledger.create(fields);
    const event = { state: "accepted" as const, at: "2026-11-25T10:00:02.000Z" };

    const expiresAt = Date.parse(event.at) + 12 * 3600_000;
    await ledger.recordAccepted(fields, "wamid.HBgLMTIwMjU1NTAxMjMVAgARGBI", event, expiresAt);
    // A retried acceptance (the worker crashed after the script ran) changes nothing.
    await ledger.recordAccepted(fields, "wamid.HBgLMTIwMjU1NTAxMjMVAgARGBI", event, expiresAt);

    const record = await ledger.get(fields.deliveryId);
    expect(record).toMatchObject({ state: "accepted", wamid: "wamid.HBgLMTIwMjU1NTAxMjMVAgARGBI", sentAt: event.at });
    expect(record?.history).toEqual([event]);
    expect(record?.inFlightSince).toBeUndefined();
    expect(await ledger.byWamid("wamid.HBgLMTIwMjU1NTAxMjMVAgARGBI")).toBe(fields.deliveryId);
    expect(await ledger.pending("ehr", "appointment-booked", "Appointment/a1")).toEqual([]);
    expect(await ledger.dueForExpiry(expiresAt - 1, 10)).toEqual([]);
    expect(await ledger.dueForExpiry(expiresAt, 10)).toEqual([fields.deliveryId]);
  });

  it("drops the expiry check once WhatsApp reports the message delivered, read or failed", async () => {
    const redis = connect();
    const ledger = createLedger(redis, ownedRedisPrefix(redis));
    const at = "2026-11-25T10:00:02.000Z";
    for (const n of [1, 2, 3, 4]) {
      await ledger.create(fieldsFor(n));
      await ledger.recordAccepted(fieldsFor(n), `wamid.${n}`, { state: "accepted", at }, Date.parse(at));
    }

    await ledger.applyStatus(fieldsFor(1).deliveryId, "wamid.1", { state: "sent", at });
    await ledger.applyStatus(fieldsFor(2).deliveryId, "wamid.2", { state: "delivered", at });
    await ledger.applyStatus(fieldsFor(3).deliveryId, "wamid.3", { state: "read", at });
    await ledger.applyStatus(fieldsFor(4).deliveryId, "wamid.4", { state: "failed", at, code: 131026 });

    expect(await ledger.dueForExpiry(Date.parse(at), 10)).toEqual([fieldsFor(1).deliveryId]);
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
      await writes.recordAccepted(fieldsFor(n), `wamid.${n}`, { state: "accepted", at: "2026-11-25T10:00:02.000Z" }, Date.now());
    }
    accepting = false;
    await poll;
    expect(halfDone).toEqual([]);
  });
});
