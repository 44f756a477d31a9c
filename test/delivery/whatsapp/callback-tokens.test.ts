import { Redis } from "ioredis";
import { describe, expect, it, onTestFinished } from "vitest";
import { createCallbackTokens } from "../../../src/delivery/whatsapp/callback-tokens.js";
import { ownedRedisPrefix, testRedisUrl } from "../../support/redis-prefix.js";

const deliveryId = "dlv_srv0f3a9c1d2e4b5a67_appointment-booked_Appointment_apt-7781_9c1d2e4b5a670f3a";

function setup(retentionSeconds = 35 * 86_400) {
  const redis = new Redis(testRedisUrl);
  onTestFinished(async () => {
    await redis.quit();
  });
  const prefix = ownedRedisPrefix(redis);
  return { redis, prefix, tokens: createCallbackTokens(redis, prefix, retentionSeconds) };
}

describe("opaque callback data for biz_opaque_callback_data", () => {
  it("is a random base64url token that names neither the resource type nor its id", async () => {
    const { tokens } = setup();
    const token = await tokens.tokenFor(deliveryId);
    expect(token).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(token).not.toContain("Appointment");
    expect(token).not.toContain("apt-7781");
    expect(await tokens.tokenFor("dlv_other")).not.toBe(token);
  });

  it("is the same token on every resend of one delivery, also when two sends ask at once", async () => {
    const { tokens } = setup();
    const [a, b] = await Promise.all([tokens.tokenFor(deliveryId), tokens.tokenFor(deliveryId)]);
    expect(b).toBe(a);
    expect(await tokens.tokenFor(deliveryId)).toBe(a);
  });

  it("resolves the token to the delivery, for the ledger's retention", async () => {
    const { redis, prefix, tokens } = setup(3_024_000);
    const token = await tokens.tokenFor(deliveryId);
    expect(await tokens.deliveryOf(token)).toBe(deliveryId);
    const ttl = await redis.ttl(`${prefix}:cbt:${token}`);
    expect(ttl).toBeGreaterThan(3_024_000 - 5);
    expect(ttl).toBeLessThanOrEqual(3_024_000);
  });

  it("takes callback data that is no token as a delivery id (statuses of sends by older builds)", async () => {
    const { tokens } = setup();
    expect(await tokens.deliveryOf(deliveryId)).toBe(deliveryId);
  });
});
