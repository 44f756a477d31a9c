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

const firstTry = "2026-11-25T10:00:01.000Z";
const resendAt = "2026-11-25T10:10:02.000Z";

/** A delivery whose first send timed out: the in-flight mark of that try is still set. */
async function inDoubt(n: number) {
  const redis = connect();
  const ledger = createLedger(redis, ownedRedisPrefix(redis));
  const fields = confirmationFields(n, { inFlightSince: firstTry, inFlightAttempt: 1 });
  await ledger.create(fields);
  return { ledger, deliveryId: fields.deliveryId };
}

describe("claiming a send (the resend's idempotency check)", () => {
  it("sets the new in-flight mark when nothing was recorded since the attempt read the old one", async () => {
    const { ledger, deliveryId } = await inDoubt(1);
    expect(await ledger.claimSend(deliveryId, firstTry, { inFlightSince: resendAt, inFlightAttempt: 2 })).toBe(true);
    expect(await ledger.get(deliveryId)).toMatchObject({ state: "queued", inFlightSince: resendAt, inFlightAttempt: 2 });
  });

  it("refuses when a status webhook arrived meanwhile (Meta had the first send)", async () => {
    const { ledger, deliveryId } = await inDoubt(2);
    await ledger.applyStatus(deliveryId, "wamid.HBgLMTIwMjU1NTAxMjIVAgARGBI", { state: "sent", at: "2026-11-25T10:00:03.000Z" });
    expect(await ledger.claimSend(deliveryId, firstTry, { inFlightSince: resendAt })).toBe(false);
    expect(await ledger.get(deliveryId)).toMatchObject({ state: "sent" });
  });

  it("refuses when a failed status arrived, even one applied while the mark was set again", async () => {
    const { ledger, deliveryId } = await inDoubt(3);
    await ledger.applyStatus(deliveryId, "wamid.HBgLMTIwMjU1NTAxMjMVAgARGBI", { state: "failed", at: "2026-11-25T10:00:03.000Z", code: 131026 });
    await ledger.set(deliveryId, { inFlightSince: firstTry });
    expect(await ledger.claimSend(deliveryId, firstTry, { inFlightSince: resendAt })).toBe(false);
  });

  it("refuses when the in-flight mark is not the one this attempt read", async () => {
    const { ledger, deliveryId } = await inDoubt(4);
    expect(await ledger.claimSend(deliveryId, undefined, { inFlightSince: resendAt })).toBe(false);
    expect(await ledger.claimSend(deliveryId, "2026-11-25T09:00:00.000Z", { inFlightSince: resendAt })).toBe(false);
    expect((await ledger.get(deliveryId))?.inFlightSince).toBe(firstTry);
  });

  it("claims a first send (no mark yet) and refuses a missing record", async () => {
    const redis = connect();
    const ledger = createLedger(redis, ownedRedisPrefix(redis));
    const fields = confirmationFields(5);
    await ledger.create(fields);
    expect(await ledger.claimSend(fields.deliveryId, undefined, { inFlightSince: firstTry })).toBe(true);
    expect(await ledger.claimSend("dlv_missing", undefined, { inFlightSince: firstTry })).toBe(false);
  });
});
