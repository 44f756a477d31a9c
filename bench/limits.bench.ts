/**
 * Resource limits under a notification burst: `n` distinct FHIR notifications (default 100,000)
 * against an api-role service (intake only: authenticate, normalise, durably queue, 202), all on
 * loopback, bounded in count and time. Reports the service process's RSS before / peak / after,
 * and Redis memory per queued event (INFO memory used_memory delta / n).
 *
 * The service runs in a child process so its RSS is not mixed with the load generator's, and Redis
 * is a dedicated redis-server in a temp dir (unless BENCH_REDIS_URL is set) so nothing else moves
 * used_memory while we measure.
 *
 * Budget (what a deployment can plan for; printed as pass/fail):
 * - service RSS peak ≤ 512 MiB and growth after the burst (post-GC) ≤ 64 MiB: intake holds no
 *   per-event state in memory; everything is in Redis.
 * - Redis ≤ 2 KiB per queued event: a BullMQ job hash with ids only (no resource bodies).
 *   100,000 queued events ≈ 200 MiB, so size maxmemory (noeviction) for the backlog you must absorb.
 *
 * Run: `npx tsx bench/limits.bench.ts --n 100000` (or import benchLimits). Never run in tests.
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { deleteKeys } from "../test/support/redis-prefix.js";
import { appointmentBodyTemplate, runLoad, type LoadResult } from "./load.js";
import { benchRedis } from "./private-redis.js";

const token = "limits-token-0123456789abcdef";
const mib = 1024 * 1024;

export const limitsBudget = { rssPeakBytes: 512 * mib, rssGrowthBytes: 64 * mib, redisBytesPerEvent: 2048 } as const;

export interface LimitsResult {
  n: number;
  load: LoadResult;
  rss: { beforeBytes: number; peakBytes: number; afterBytes: number; afterGcBytes: number };
  redis: { beforeBytes: number; afterBytes: number; perEventBytes: number; queuedJobs: number };
  withinBudget: { rssPeak: boolean; rssGrowth: boolean; redisPerEvent: boolean };
}

const appointmentBody = appointmentBodyTemplate("lim");

type ChildRequest = { type: "rss"; resetPeak?: boolean; gc?: boolean } | { type: "stop" };
type ChildReply = { type: "ready"; url: string } | { type: "rss"; rss: number; peak: number } | { type: "stopped" };

export async function benchLimits(n = 100_000): Promise<LimitsResult> {
  const benchServer = await benchRedis();
  const redisUrl = benchServer.url;
  const prefix = `bench-${randomUUID()}`;
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ["--import", "tsx", "--expose-gc"],
    env: { ...process.env, FN_LIMITS_CHILD: "1", FN_LIMITS_REDIS: redisUrl, FN_LIMITS_PREFIX: prefix },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  try {
    const { url } = await reply<{ url: string }>(child, undefined, "ready");
    const ask = (req: ChildRequest) => reply<{ rss: number; peak: number }>(child, req, "rss");
    // Warm up (JIT, connections) with a small burst of other ids, then measure from a settled state.
    await runLoad({ url: `${url}/hooks/fhir/limits/Appointment/warm-{{n}}`, method: "PUT", headers: headers(), body: appointmentBody.replaceAll("lim-{{n}}", "warm-{{n}}"), requests: 500, concurrency: 32, timeLimitMs: 60_000 });
    const before = await ask({ type: "rss", resetPeak: true, gc: true });
    const redisBefore = await usedMemory(redis);

    const load = await runLoad({ url: `${url}/hooks/fhir/limits/Appointment/lim-{{n}}`, method: "PUT", headers: headers(), body: appointmentBody, requests: n, concurrency: 64, timeLimitMs: 15 * 60_000 });

    const after = await ask({ type: "rss" });
    const afterGc = await ask({ type: "rss", gc: true });
    const redisAfter = await usedMemory(redis);
    const queuedJobs = await redis.llen(`${prefix}:intake:wait`);
    const perEventBytes = load.ok > 0 ? (redisAfter - redisBefore) / load.ok : 0;
    return {
      n,
      load,
      rss: { beforeBytes: before.rss, peakBytes: Math.max(after.peak, afterGc.peak), afterBytes: after.rss, afterGcBytes: afterGc.rss },
      redis: { beforeBytes: redisBefore, afterBytes: redisAfter, perEventBytes, queuedJobs },
      withinBudget: {
        rssPeak: Math.max(after.peak, afterGc.peak) <= limitsBudget.rssPeakBytes,
        rssGrowth: afterGc.rss - before.rss <= limitsBudget.rssGrowthBytes,
        redisPerEvent: perEventBytes <= limitsBudget.redisBytesPerEvent,
      },
    };
  } finally {
    if (child.connected) await reply(child, { type: "stop" }, "stopped").catch(() => undefined);
    if (child.exitCode === null) child.kill("SIGKILL");
    await deleteKeys(redis, prefix);
    await redis.quit();
    await benchServer.stop();
  }
}

const headers = () => ({ "content-type": "application/fhir+json", authorization: `Bearer ${token}` });

function reply<T>(child: ChildProcess, request: ChildRequest | undefined, type: ChildReply["type"]): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: ChildReply) => {
      if (m.type !== type) return;
      child.off("message", onMessage);
      child.off("exit", onExit);
      resolve(m as T);
    };
    const onExit = (code: number | null) => reject(new Error(`limits service exited (${String(code)}) while waiting for ${type}`));
    child.on("message", onMessage);
    child.once("exit", onExit);
    if (request !== undefined) child.send(request);
  });
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info("memory");
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? Number.NaN);
}

/** The child: an api-role service that reports its own RSS (sampled every 20 ms for the peak). */
async function serveAsChild(): Promise<void> {
  const { configSchema } = await import("../src/config/config.schema.js");
  const { startService } = await import("../src/service.js");
  const { createLogger } = await import("../src/shared/logger.js");
  const { systemClock } = await import("../src/shared/clock.js");
  const { createMetrics } = await import("../src/shared/metrics.js");
  const config = configSchema.parse({
    http: { port: 0 },
    redis: { url: process.env.FN_LIMITS_REDIS, prefix: process.env.FN_LIMITS_PREFIX },
    fhir: { baseUrl: "http://127.0.0.1:9/fhir" },
    sources: { limits: { auth: { type: "bearer", token } } },
    log: { level: "silent" },
  });
  const service = await startService({ config, log: createLogger("silent"), clock: systemClock, role: "api", metrics: createMetrics({ defaultMetrics: false }) });
  let peak = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 20);
  const gc = (globalThis as { gc?: () => void }).gc;
  process.on("message", (m: ChildRequest) => {
    void (async () => {
      if (m.type === "stop") {
        clearInterval(sampler);
        await service.stop();
        process.send?.({ type: "stopped" } satisfies ChildReply);
        process.disconnect();
        return;
      }
      if (m.gc === true && gc !== undefined) {
        gc();
        gc();
      }
      const rss = process.memoryUsage.rss();
      peak = Math.max(peak, rss);
      process.send?.({ type: "rss", rss, peak } satisfies ChildReply);
      if (m.resetPeak === true) peak = rss;
    })();
  });
  process.send?.({ type: "ready", url: service.url } satisfies ChildReply);
}

if (process.env.FN_LIMITS_CHILD === "1") {
  await serveAsChild();
} else if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const i = process.argv.indexOf("--n");
  const n = i >= 0 ? Number(process.argv[i + 1]) : 100_000;
  const r = await benchLimits(n);
  const m = (b: number) => `${(b / mib).toFixed(1)} MiB`;
  const ok = (b: boolean) => (b ? "within budget" : "OVER BUDGET");
  process.stdout.write(
    [
      `limits: ${r.load.ok.toLocaleString("en-US")} of ${n.toLocaleString("en-US")} notifications queued (${r.load.failed} failed) in ${r.load.seconds.toFixed(1)} s (${Math.round(r.load.perSecond)}/s, p99 ${r.load.p99Ms.toFixed(1)} ms)`,
      `service RSS: before ${m(r.rss.beforeBytes)}, peak ${m(r.rss.peakBytes)} (${ok(r.withinBudget.rssPeak)}: ≤ ${m(limitsBudget.rssPeakBytes)}), after ${m(r.rss.afterBytes)}, after GC ${m(r.rss.afterGcBytes)} (growth ${ok(r.withinBudget.rssGrowth)}: ≤ ${m(limitsBudget.rssGrowthBytes)})`,
      `redis used_memory: ${m(r.redis.beforeBytes)} → ${m(r.redis.afterBytes)}; ${Math.round(r.redis.perEventBytes)} bytes per queued event (${ok(r.withinBudget.redisPerEvent)}: ≤ ${limitsBudget.redisBytesPerEvent}); ${r.redis.queuedJobs.toLocaleString("en-US")} jobs waiting`,
      "",
    ].join("\n"),
  );
}
