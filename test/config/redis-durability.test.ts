import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { describe, expect, it, onTestFinished } from "vitest";
import { configSchema } from "../../src/config/config.schema.js";
import { redisDurabilityWarnings } from "../../src/config/redis-durability.js";
import { freePort } from "../../src/redis/embedded-redis.js";
import { startService } from "../../src/service.js";
import { systemClock } from "../../src/shared/clock.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetrics } from "../../src/shared/metrics.js";
import { waitFor } from "../support/wait-for.js";
import { captureLogs } from "../support/log-capture.js";
import { startTestService } from "../support/start-test-service.js";

/** A redis-server of this test's own, configured as a careless deployment would be. */
async function redisServer(args: string[]): Promise<string> {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", ...args], { stdio: "ignore" });
  onTestFinished(async () => {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  });
  const url = `redis://127.0.0.1:${port}`;
  await waitFor("redis-server answering", async () => {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on("error", () => undefined);
    try {
      await probe.connect();
      return (await probe.ping()) === "PONG";
    } catch {
      return false;
    } finally {
      probe.disconnect();
    }
  });
  return url;
}

describe("a Redis that can lose queued work", () => {
  it("is named at boot and on /readyz, as a warning: the service stays ready", async () => {
    const url = await redisServer(["--appendonly", "no", "--maxmemory-policy", "allkeys-lru"]);
    const logs = captureLogs("info");
    const service = await startTestService({ role: "api", log: logs.log, config: { redis: { url } } });
    const warnings = ["redis has AOF off (appendonly no): a Redis restart loses jobs accepted since its last snapshot; set appendonly yes", "redis maxmemory-policy is allkeys-lru: under memory pressure it deletes queued jobs; set noeviction"];
    const boot = logs.lines.map((l) => JSON.parse(l) as { event?: string; msg: string; level: number }).filter((l) => l.event === "redis-not-durable");
    expect(boot.map((l) => [l.level, l.msg])).toEqual(warnings.map((w) => [40, w]));
    const ready = (await (await fetch(`${service.url}/readyz`)).json()) as { status: string; warnings?: string[] };
    expect(ready).toMatchObject({ status: "ready", warnings });
  });

  it("gives no warning with AOF on and noeviction", async () => {
    const url = await redisServer(["--appendonly", "yes", "--dir", mkdtempSync(join(tmpdir(), "fn-aof-")), "--maxmemory-policy", "noeviction"]);
    const redis = new Redis(url);
    onTestFinished(async () => {
      await redis.quit();
    });
    expect(await redisDurabilityWarnings(redis)).toEqual([]);
  });
});

describe("a Redis that does not answer", () => {
  it("stops the boot with one line saying so, without the URL's password", async () => {
    const port = await freePort();
    const config = configSchema.parse({ http: { port: 0 }, redis: { url: `redis://:s3cret-pass@127.0.0.1:${port}` }, log: { level: "silent" } });
    const boot = startService({ config, log: createLogger("silent"), clock: systemClock, metrics: createMetrics({ defaultMetrics: false }) });
    await expect(boot).rejects.toThrow(`redis: cannot connect to 127.0.0.1:${port} (ECONNREFUSED); is it running? check REDIS_URL`);
    await expect(boot).rejects.not.toThrow(/s3cret/);
  });
});
