import { Redis } from "ioredis";
import { describe, expect, it, onTestFinished } from "vitest";
import { createLedger } from "../../src/delivery/ledger.js";
import { newRedisPrefix, testRedisUrl } from "../support/redis-prefix.js";

/**
 * Found by the Redis-restart scenario: creating a delivery took two round trips (HSETNX, then the
 * fields), so a restart in between left a record holding only its id. A retry read that stub as
 * "already decided" and the send worker could never send it. Creation is now one script.
 */
describe("a delivery record is created whole, once", () => {
  it("writes every field, the pending set and the index in one step, and refuses a second create", async () => {
    const { prefix, cleanup } = newRedisPrefix();
    const redis = new Redis(testRedisUrl);
    onTestFinished(async () => {
      await cleanup();
      await redis.quit();
    });
    const ledger = createLedger(redis, prefix);
    const fields = {
      deliveryId: "dlv_ehr_appointment-booked_Appointment_a1_0123456789abcdef",
      source: "ehr",
      ruleId: "appointment-booked",
      rulesHash: "h1",
      templateName: "appointment_confirmation_v1",
      category: "notification" as const,
      resourceRef: "Appointment/a1",
      resourceVersion: "3",
      distinctBy: ["a1", "2030-01-02T10:00:00.000Z"],
      createdAt: "2026-11-25T10:00:00.000Z",
      updatedAt: "2026-11-25T10:00:00.000Z",
    };

    expect(await ledger.create(fields)).toBe(true);
    expect(await ledger.create({ ...fields, resourceVersion: "4" })).toBe(false);

    const record = await ledger.get(fields.deliveryId);
    expect(record).toMatchObject({ ...fields, state: "queued", history: [] });
    expect(await ledger.pending("ehr", "appointment-booked", "Appointment/a1")).toEqual([fields.deliveryId]);
    expect(await ledger.recent(10)).toEqual([fields.deliveryId]);
    expect(await redis.ttl(`${prefix}:dlv:${fields.deliveryId}`)).toBeGreaterThan(0);
    expect(await redis.ttl(`${prefix}:pend:ehr|appointment-booked|Appointment/a1`)).toBeGreaterThan(0);
  });
});
