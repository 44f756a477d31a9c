import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createOptOutStore, hashPhone, hashUserId } from "../../src/delivery/opt-out.js";
import { ownedRedisPrefix, testRedisUrl } from "../support/redis-prefix.js";

const redis = new Redis(testRedisUrl, { maxRetriesPerRequest: 1 });
afterAll(() => redis.quit());

const phone = hashPhone("+12025550141");
const user = hashUserId("US.13491208655302741918");

describe("opt-out store: the patient's latest word wins", () => {
  it("still calls a redelivered word the latest, so a retried job finishes its audit records", async () => {
    const store = createOptOutStore(redis, ownedRedisPrefix(redis));
    // The replies job records STOP, then its Consent create fails (FHIR 503) and the job is retried.
    expect(await store.recordWord([phone], "out", "2026-12-03T10:00:00.000Z")).toBe(true);
    expect(await store.recordWord([phone], "out", "2026-12-03T10:00:00.000Z")).toBe(true);
    expect(await store.isOptedOut(phone)).toBe(true);
  });

  it("ignores an older word after a newer one, and a START after STOP restores messaging", async () => {
    const store = createOptOutStore(redis, ownedRedisPrefix(redis));
    expect(await store.recordWord([phone], "out", "2026-12-03T10:00:00.000Z")).toBe(true);
    expect(await store.recordWord([phone], "in", "2026-12-03T11:00:00.000Z")).toBe(true);
    expect(await store.isOptedOut(phone)).toBe(false);
    // The STOP again (Meta redelivers it): older than START, changes nothing.
    expect(await store.recordWord([phone], "out", "2026-12-03T10:00:00.000Z")).toBe(false);
    expect(await store.isOptedOut(phone)).toBe(false);
  });

  it("carries a STOP said under a user id to the number once the two are seen together", async () => {
    const store = createOptOutStore(redis, ownedRedisPrefix(redis));
    expect(await store.recordWord([user], "out", "2026-12-03T10:00:00.000Z")).toBe(true);
    expect(await store.isOptedOut(phone)).toBe(false);
    await store.link(user, phone, "Patient/p1");
    expect(await store.isOptedOut(phone)).toBe(true);
    expect(await store.patientFor([user])).toBe("Patient/p1");
  });
});
