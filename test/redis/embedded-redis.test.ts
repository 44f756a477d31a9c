import { execFileSync } from "node:child_process";
import { mkdtempSync, existsSync, readFileSync } from "node:fs";
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

  it("runs it in its own process group, so a terminal's Ctrl-C reaches only the service, which stops it last", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fn-embedded-"));
    const target = await startEmbeddedRedis(dir);
    try {
      const { pid } = JSON.parse(readFileSync(join(dir, "fhir-notify-redis.json"), "utf8")) as { pid: number };
      const groupOf = (p: number) => Number(execFileSync("ps", ["-o", "pgid=", "-p", String(p)]).toString().trim());
      expect(groupOf(pid)).toBe(pid);
      expect(groupOf(pid)).not.toBe(groupOf(process.pid));
    } finally {
      await target.stop();
    }
  });

  it("stops the server a killed run left in the data dir before starting its own", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fn-embedded-"));
    const leftover = await startEmbeddedRedis(dir); // never stopped: as if the service was SIGKILLed
    const leftoverPort = Number(new URL(leftover.url).port);
    const fresh = await startEmbeddedRedis(dir);
    try {
      expect(await answersPing("127.0.0.1", leftoverPort)).toBe(false);
      expect(await answersPing("127.0.0.1", Number(new URL(fresh.url).port))).toBe(true);
    } finally {
      await fresh.stop();
      await leftover.stop();
    }
    expect(existsSync(join(dir, "fhir-notify-redis.json"))).toBe(false);
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
