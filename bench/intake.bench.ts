import { Hono } from "hono";
import { serve } from "@hono/node-server";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { randomUUID } from "node:crypto";
import { configSchema } from "../src/config/config.schema.js";
import { startService } from "../src/service.js";
import { createLogger } from "../src/shared/logger.js";
import { systemClock } from "../src/shared/clock.js";
import { createMetrics } from "../src/shared/metrics.js";
import { freePort } from "../src/redis/embedded-redis.js";
import { appointmentBodyTemplate, runLoad, type LoadResult } from "./load.js";
import { runWrk } from "./wrk.js";
import { deleteKeysAt } from "../test/support/redis-prefix.js";

const redisUrl = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const token = "bench-token-0123456789abcdef";

const appointmentBody = appointmentBodyTemplate("bench");

const cleanup = (prefix: string): Promise<void> => deleteKeysAt(redisUrl, prefix);

/** What drives the load: the Node generator (a child process) or wrk; both get the same URL, headers and body. */
type Drive = (url: string, headers: Record<string, string>) => Promise<LoadResult>;

const concurrency = 64;
const nodeLoad = (requests: number): Drive => (url, headers) =>
  runLoad({ url, method: "PUT", headers, body: appointmentBody, requests, concurrency, timeLimitMs: 60_000 });
// Bounded by time; the count cap (50,000/s) is far above what two cores reach.
const wrkLoad = (seconds: number): Drive => (url, headers) =>
  runWrk({ url, method: "PUT", headers, body: appointmentBody, concurrency, seconds, maxRequests: seconds * 50_000 });

/** The ceiling: a bare Hono route that only does queue.add, on the same Redis. */
async function ceiling(drive: Drive): Promise<Measured> {
  const prefix = `bench-${randomUUID()}`;
  const producer = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const queue = new Queue("intake", { connection: producer, prefix });
  const app = new Hono().put("/x/:id", async (c) => {
    await queue.add("process-event", { id: c.req.param("id") }, { jobId: `j_${c.req.param("id")}` });
    return c.body(null, 202);
  });
  const port = await freePort();
  // Listening before the load starts: wrk, unlike the forked Node generator, connects at once.
  const server = await new Promise<ReturnType<typeof serve>>((done) => {
    const s = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, () => done(s));
  });
  try {
    return await withCpu(() => drive(`http://127.0.0.1:${port}/x/{{n}}`, { "content-type": "application/fhir+json" }));
  } finally {
    server.close();
    await queue.close();
    await producer.quit();
    await cleanup(prefix);
  }
}

/** fhir-notify's intake: authenticate, normalise, durably queue, answer 202 (API role: no workers). */
async function intake(drive: Drive): Promise<Measured> {
  const prefix = `bench-${randomUUID()}`;
  const config = configSchema.parse({
    http: { port: 0 },
    redis: { url: redisUrl, prefix },
    fhir: { baseUrl: "http://127.0.0.1:9/fhir" },
    sources: { bench: { auth: { type: "bearer", token } } },
    log: { level: "silent" },
  });
  const service = await startService({ config, log: createLogger("silent"), clock: systemClock, role: "api", metrics: createMetrics({ defaultMetrics: false }) });
  try {
    return await withCpu(() => drive(`${service.url}/hooks/fhir/bench/Appointment/bench-{{n}}`, { "content-type": "application/fhir+json", authorization: `Bearer ${token}` }));
  } finally {
    await service.stop();
    await cleanup(prefix);
  }
}

export type Measured = LoadResult & { cpuUsPerRequest: number };

/**
 * Server-side CPU per request (this process: HTTP, intake, Redis client; the load generator runs in
 * a child process or is wrk). Unlike requests/s it barely moves when other work shares the machine, so it is the
 * figure to compare between runs; requests/s and p99 are only meaningful on a quiet machine.
 */
async function withCpu(run: () => Promise<LoadResult>): Promise<Measured> {
  const before = process.cpuUsage();
  const result = await run();
  const used = process.cpuUsage(before);
  return { ...result, cpuUsPerRequest: (used.user + used.system) / Math.max(1, result.requests) };
}

export interface IntakeBenchResult {
  /** Per figure, the median of the rounds: one slow round on a shared machine does not decide. */
  ceiling: Measured;
  intake: Measured;
  /** intake/ceiling throughput of each round, in order. */
  ratios: number[];
  /** The median of those: each round pairs two runs under the same machine load. */
  ratio: number;
}

const median = (xs: readonly number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

function medianOf(runs: readonly Measured[]): Measured {
  const m = (pick: (r: Measured) => number) => median(runs.map(pick));
  return {
    requests: m((r) => r.requests),
    ok: m((r) => r.ok),
    failed: m((r) => r.failed),
    seconds: m((r) => r.seconds),
    perSecond: m((r) => r.perSecond),
    p50Ms: m((r) => r.p50Ms),
    p99Ms: m((r) => r.p99Ms),
    cpuUsPerRequest: m((r) => r.cpuUsPerRequest),
  };
}

/**
 * Ceiling and intake in alternating rounds, so both see the same machine weather; each figure is
 * the median over the rounds.
 */
async function pairedRounds(drive: Drive, warm: Drive, rounds: number): Promise<IntakeBenchResult> {
  // Warm both paths once so JIT and connection setup do not count.
  await ceiling(warm);
  await intake(warm);
  const c: Measured[] = [];
  const i: Measured[] = [];
  for (let r = 0; r < rounds; r++) {
    c.push(await ceiling(drive));
    i.push(await intake(drive));
  }
  const ratios = i.map((x, r) => x.perSecond / c[r]!.perSecond);
  return { ceiling: medianOf(c), intake: medianOf(i), ratios, ratio: median(ratios) };
}

/** Load from the Node generator: a child process sharing the machine's cores with the server. */
export function benchIntake(requests = 10_000, rounds = 5): Promise<IntakeBenchResult> {
  return pairedRounds(nodeLoad(requests), nodeLoad(500), rounds);
}

/**
 * Load from wrk (installed from Debian when missing): far cheaper per request than the Node
 * generator, so the ceiling rises and the server's own cost per request shows more.
 */
export function benchIntakeWrk(seconds = 3, rounds = 3): Promise<IntakeBenchResult> {
  return pairedRounds(wrkLoad(seconds), wrkLoad(1), rounds);
}
