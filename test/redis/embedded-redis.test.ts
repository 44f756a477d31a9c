import { mkdtempSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { answersPing, resolveRedis, startEmbeddedRedis } from "../../src/redis/embedded-redis.js";

describe("finding or starting a Redis", () => {
  it("uses REDIS_URL as given without probing anything", async () => {
    const target = await resolveRedis("redis://redis.internal:6380", ".data/redis");
    expect(target).toMatchObject({ url: "redis://redis.internal:6380", origin: "configured" });
  });

  it("uses the Redis already answering on 127.0.0.1:6379", async () => {
    expect(await answersPing("127.0.0.1", 6379)).toBe(true);
    const target = await resolveRedis(undefined, ".data/redis");
    expect(target).toMatchObject({ url: "redis://127.0.0.1:6379", origin: "local" });
  });

  it("starts its own redis-server with append-only data in the data dir, and stops it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fn-embedded-"));
    const target = await startEmbeddedRedis(dir);
    const port = Number(new URL(target.url).port);
    expect(target.origin).toBe("embedded");
    expect(await answersPing("127.0.0.1", port)).toBe(true);
    expect(existsSync(join(dir, "appendonlydir")) || existsSync(join(dir, "appendonly.aof"))).toBe(true);
    await target.stop();
    // Nothing is left behind listening.
    expect(await answersPing("127.0.0.1", port)).toBe(false);
  });

  it("says how to fix it when no redis-server is on PATH", async () => {
    const path = process.env.PATH;
    process.env.PATH = mkdtempSync(join(tmpdir(), "fn-empty-path-"));
    try {
      await expect(startEmbeddedRedis(mkdtempSync(join(tmpdir(), "fn-embedded-")))).rejects.toThrow(
        /redis-server is not on PATH; install it \(apt-get install redis-server\) or set REDIS_URL/,
      );
    } finally {
      process.env.PATH = path;
    }
  });
});
