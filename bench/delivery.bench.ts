import { randomUUID } from "node:crypto";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { createCloudApiClient } from "../src/delivery/whatsapp/cloud-api.client.js";
import type { Appointment, FhirResource, Location, Organization, Patient } from "fhir/r4";
import { configSchema } from "../src/config/config.schema.js";
import { createLedger } from "../src/delivery/ledger.js";
import { startService, type RunningService } from "../src/service.js";
import { systemClock } from "../src/shared/clock.js";
import { createLogger } from "../src/shared/logger.js";
import { createMetrics } from "../src/shared/metrics.js";
import type { FakeFhir } from "../test/fakes/fhir.fake.js";
import { IndexedFhir } from "./indexed-fhir.js";
import { startAuditWorkerProcess } from "./audit-worker-process.js";
import { buildStatusWebhook, signWebhook, startFakeGraphApi, type FakeGraphApi } from "../test/fakes/graph-api.server.js";
import { deleteKeys, deleteKeysAt } from "../test/support/redis-prefix.js";
import { startGraphApiProcess, type RemoteGraphApi } from "./graph-api-process.js";
import { benchMessage } from "./whatsapp.bench.js";
import { benchRedis, startCommandCount } from "./private-redis.js";

const sharedRedisUrl = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const appSecret = "bench-app-secret";
const maxItems = 50_000;
const timeLimitMs = 120_000;

export interface Throughput {
  items: number;
  elapsedMs: number;
  perSecond: number;
}

export interface DeliveryBenchResult {
  /** benchDelivery: from queued decisions (send-message jobs) to the fake Graph API's ack and the write-back queue drained. */
  delivery: Throughput;
  /** benchDelivery only: from notifications (process-event jobs) to the same end, intake included. */
  fromNotification?: Throughput;
  /** benchDelivery: n jobs through bare BullMQ doing the same send (HTTP to the fake Graph API) and one ledger script; benchStatuses: bare add + no-op. */
  ceiling: Throughput;
}

/** Redis commands and FHIR requests per appointment, counted in a separate (MONITORed, untimed) run. */
export interface DeliveryCost {
  appointments: number;
  /** From notification to confirmation sent and every write-back done. */
  perAppointment: { client: number; lua: number; fhir: number };
  /** The send phase only: queued decision → sent → its write-back done. */
  perSend: { client: number; lua: number; fhir: number; byName: [string, number][] };
  /** Whether the counts come from a redis-server nothing else uses. */
  isolated: boolean;
}

const clamp = (n: number) => Math.min(Math.max(1, Math.floor(n)), maxItems);
const rate = (items: number, elapsedMs: number): Throughput => ({ items, elapsedMs, perSecond: (items * 1000) / Math.max(1, elapsedMs) });

async function until(what: string, probe: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + timeLimitMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Raw counts on the bench's own connection (BullMQ's getJobCounts is a Lua script, which would
 * blur the command counts): a queue's list and sorted-set sizes under the BullMQ key layout.
 */
function jobCounter(redis: Redis, prefix: string) {
  return {
    completed: (queue: string) => redis.zcard(`${prefix}:${queue}:completed`),
    /** Waiting, active or prioritized: what a worker still has to do (delayed jobs are not counted). */
    async outstanding(queue: string): Promise<number> {
      const [wait, paused, active, prioritized] = await Promise.all([
        redis.llen(`${prefix}:${queue}:wait`),
        redis.llen(`${prefix}:${queue}:paused`),
        redis.llen(`${prefix}:${queue}:active`),
        redis.zcard(`${prefix}:${queue}:prioritized`),
      ]);
      return wait + paused + active + prioritized;
    },
  };
}

/** The whole service (role all) on an in-memory FhirPort, the live client pointed at the fake Graph API. */
async function startBenchService(
  redisUrl: string,
  fhir: FakeFhir,
  graph: Pick<FakeGraphApi, "url" | "phoneNumberId" | "accessToken">,
  prefix: string,
  queues: readonly string[] = ["intake", "delivery", "audit", "webhook"],
  /** Delivery settings over the bench's own (a budget in force, finished-job retention...). */
  delivery: Record<string, unknown> = {},
): Promise<RunningService> {
  const config = configSchema.parse({
    http: { port: 0 },
    log: { level: "silent" },
    redis: { url: redisUrl, prefix },
    fhir: { baseUrl: fhir.baseUrl },
    whatsapp: { phoneNumberId: graph.phoneNumberId, accessToken: graph.accessToken, apiBase: graph.url, appSecret },
    delivery: {
      quietHours: { enabled: false },
      rateLimits: { perSenderPerSecond: 1000 },
      ...delivery,
    },
    mapping: {
      consent: { mode: "none" },
      locations: { "Location/loc-1": { label: "Riverside Clinic", timeZone: "America/New_York" } },
      organization: { reference: "Organization/org-1", displayName: "Riverside Health" },
    },
    workers: { queues },
  });
  return startService({ config, fhir, log: createLogger("silent"), clock: systemClock, metrics: createMetrics({ defaultMetrics: false }) });
}

function seedFhir(n: number, start: Date): IndexedFhir {
  const seed: FhirResource[] = [
    { resourceType: "Organization", id: "org-1", name: "Riverside Health" } satisfies Organization,
    { resourceType: "Location", id: "loc-1", name: "Riverside Clinic", status: "active" } satisfies Location,
  ];
  for (let i = 0; i < n; i++) {
    seed.push({
      resourceType: "Patient",
      id: `p-${i}`,
      active: true,
      name: [{ given: [`Pat${i}`], family: "Bench" }],
      telecom: [{ system: "phone", value: `+1202${String(5_000_000 + i).slice(-7)}`, use: "mobile" }],
    } satisfies Patient);
    seed.push({
      resourceType: "Appointment",
      id: `a-${i}`,
      status: "booked",
      start: start.toISOString(),
      end: new Date(start.getTime() + 30 * 60_000).toISOString(),
      participant: [
        { actor: { reference: `Patient/p-${i}` }, status: "accepted" },
        { actor: { reference: "Location/loc-1" }, status: "accepted" },
      ],
    } satisfies Appointment);
  }
  return new IndexedFhir(seed);
}

/** n jobs through bare BullMQ: addBulk in 100s, a no-op worker with the delivery queue's concurrency. */
async function bareQueueCeiling(redisUrl: string, n: number): Promise<Throughput> {
  return queueCeiling(redisUrl, n, () => Promise.resolve());
}

/**
 * The delivery ceiling: the same work as a send without fhir-notify's decisions around it. Each
 * bare BullMQ job sends one template through the same Cloud API client to the same fake Graph API
 * process, and records the acceptance with the ledger's one script (event, wamid, index).
 */
async function sendCeiling(redisUrl: string, graph: RemoteGraphApi, n: number): Promise<Throughput> {
  const prefix = `bench-${randomUUID()}`;
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null, enableAutoPipelining: true });
  const ledger = createLedger(redis, prefix);
  const client = createCloudApiClient({ apiBase: graph.url, graphVersion: "v23.0", phoneNumberId: graph.phoneNumberId, accessToken: graph.accessToken, timeoutMs: 15_000 }, createLogger("silent"));
  try {
    return await queueCeiling(redisUrl, n, async (i) => {
      const sent = await client.sendTemplate(benchMessage(i));
      const deliveryId = `ceiling_${i}`;
      await ledger.recordAccepted({ deliveryId, source: "bench", ruleId: "ceiling", resourceRef: `Appointment/c-${i}` }, sent.wamid, { state: "accepted", at: new Date().toISOString() }, Date.now() + 86_400_000);
    });
  } finally {
    await deleteKeys(redis, prefix);
    await redis.quit();
  }
}

async function queueCeiling(redisUrl: string, n: number, work: (i: number) => Promise<void>): Promise<Throughput> {
  const prefix = `bench-${randomUUID()}`;
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue("ceiling", { connection, prefix });
  let done = 0;
  const worker = new Worker(
    "ceiling",
    async (job) => {
      await work((job.data as { i: number }).i);
      return ++done;
    },
    { connection: { url: redisUrl, maxRetriesPerRequest: null }, prefix, concurrency: 32 },
  );
  try {
    await worker.waitUntilReady();
    const t0 = performance.now();
    for (let from = 0; from < n; from += 100) {
      await queue.addBulk(Array.from({ length: Math.min(100, n - from) }, (_, k) => ({ name: "noop", data: { i: from + k }, opts: { removeOnComplete: true } })));
    }
    await until("the ceiling jobs", () => done >= n);
    return rate(n, performance.now() - t0);
  } finally {
    await worker.close();
    await queue.close();
    await deleteKeys(connection, prefix);
    await connection.quit();
  }
}

/** The two phases of one delivery run, timed; `between` runs while the delivery queue is still paused. */
async function deliveryRun(
  redisUrl: string,
  total: number,
  graph: RemoteGraphApi,
  opts: { auditProcess?: boolean; fhir?: IndexedFhir; poll?: Redis; delivery?: Record<string, unknown> },
  hooks: { beforeDecide?: () => Promise<void>; beforeSend?: () => void; afterDrained?: () => Promise<void> } = {},
): Promise<{ delivery: Throughput; fromNotification: Throughput }> {
  const prefix = `bench-${randomUUID()}`;
  const fhir = opts.fhir ?? seedFhir(total, new Date(Date.now() + 30 * 3_600_000));
  const auditor = opts.auditProcess === true ? await startAuditWorkerProcess(redisUrl, prefix) : undefined;
  const service = await startBenchService(redisUrl, fhir, graph, prefix, auditor !== undefined ? ["intake", "delivery", "webhook"] : undefined, opts.delivery);
  const poll = opts.poll ?? new Redis(redisUrl, { maxRetriesPerRequest: 3 });
  const counts = jobCounter(poll, prefix);
  const acceptedBefore = await graph.accepted();
  try {
    const receivedAt = new Date().toISOString();
    // Phase 1 — notifications to queued decisions: intake runs with the delivery queue paused, so
    // the second phase starts from decisions already queued (what the target names).
    await service.queues.byName.delivery.pause();
    await hooks.beforeDecide?.();
    const t0 = performance.now();
    for (let from = 0; from < total; from += 500) {
      await service.queues.enqueueBulk(
        "process-event",
        Array.from({ length: Math.min(500, total - from) }, (_, k) => ({
          data: { source: "bench", resourceType: "Appointment", id: `a-${from + k}`, versionId: "1", interaction: "update" as const, receivedAt, shape: "full-resource" },
          options: { jobId: `bench_a-${from + k}` },
        })),
      );
    }
    await until("every event decided", async () => (await counts.completed("intake")) >= total);
    // The decisions' own write-backs (queued Communications) belong to this phase, not the next.
    await until("the decisions' audit writes", async () => (await counts.outstanding("audit")) === 0);
    hooks.beforeSend?.();
    const t1 = performance.now();
    await service.queues.byName.delivery.resume();
    await until("every confirmation acknowledged", async () => (await graph.accepted()) - acceptedBefore >= total);
    // A send is done when its Communication is written back, not when Meta acknowledged it.
    await until("every send written back", async () => (await counts.outstanding("delivery")) + (await counts.outstanding("audit")) === 0);
    const t2 = performance.now();
    await hooks.afterDrained?.();
    return { delivery: rate(total, t2 - t1), fromNotification: rate(total, t2 - t0) };
  } finally {
    await service.stop();
    await auditor?.stop();
    await deleteKeys(poll, prefix);
    if (opts.poll === undefined) await poll.quit();
  }
}

/**
 * End-to-end messages/s: n process-event jobs enqueued in bulk (decisions already "arrived") →
 * mapping → schedule → send worker (re-check, rate gates at 1,000/s, live client) → the fake
 * Graph API's acknowledgement → the send's Communication write-back done. Only confirmations
 * count; the reminders wait 6 h and are not sent. The fake Graph API runs in its own process, as
 * Meta's servers are not on our core; Redis is a redis-server of the bench's own. With
 * `auditProcess`, Communication write-back runs in a second worker process (WORKER_QUEUES=audit)
 * instead of this one.
 */
export async function benchDelivery(n: number, opts: { auditProcess?: boolean } = {}): Promise<DeliveryBenchResult> {
  const total = clamp(n);
  const redis = await benchRedis();
  const graph = await startGraphApiProcess();
  try {
    const run = await deliveryRun(redis.url, total, graph, opts);
    return { ...run, ceiling: await sendCeiling(redis.url, graph, total) };
  } finally {
    await graph.stop();
    await redis.stop();
  }
}

export interface FootprintResult {
  appointments: number;
  /** used_memory growth per appointment, all of it processed (confirmation sent and written back, reminder scheduled), without the finished send jobs kept an hour for inspection. */
  perAppointmentBytes: { defaultConfig: number; recommended: number };
  isolated: boolean;
}

/**
 * Redis bytes a fully processed appointment keeps: INFO used_memory before the notifications and
 * after every confirmation is acknowledged and written back (its reminder still waits as a
 * delayed job), divided by the count. Run on Redis's defaults and with the hash-max-listpack-value
 * 1024 that docs/operations.md recommends.
 */
export async function benchProcessedFootprint(n = 2_000): Promise<FootprintResult> {
  const total = clamp(n);
  const redis = await benchRedis();
  const graph = await startGraphApiProcess();
  const poll = new Redis(redis.url, { maxRetriesPerRequest: 3 });
  const used = async () => Number(/^used_memory:(\d+)/m.exec(await poll.info("memory"))?.[1] ?? Number.NaN);
  const measure = async (): Promise<number> => {
    let before = 0;
    let after = 0;
    // Finished send and write-back jobs stay an hour for inspection only; what stays for the
    // retention is measured without them.
    await deliveryRun(redis.url, total, graph, { poll, delivery: { keepFinishedSendJobsMinutes: 0 } }, {
      beforeDecide: async () => {
        before = await used();
      },
      afterDrained: async () => {
        after = await used();
      },
    });
    return (after - before) / total;
  };
  try {
    const original = ((await poll.config("GET", "hash-max-listpack-value")) as string[])[1] ?? "64";
    const defaultConfig = await measure();
    await poll.config("SET", "hash-max-listpack-value", "1024");
    const recommended = await measure();
    await poll.config("SET", "hash-max-listpack-value", original);
    return { appointments: total, perAppointmentBytes: { defaultConfig, recommended }, isolated: redis.isolated };
  } finally {
    await poll.quit();
    await graph.stop();
    await redis.stop();
  }
}

export interface BudgetCostResult {
  /** Per paired round: without the budget, then with it. */
  rounds: { without: Throughput; with: Throughput }[];
  /** Median over the rounds of (1 - with/without): what the budget check costs the send path. */
  overhead: number;
}

/**
 * The send path with and without a daily unique-recipient budget, in paired rounds on the same
 * Redis and fake Graph API (alternating, so drift on a shared machine hits both alike). The
 * budget (1,000,000) never defers, so only its check is measured.
 */
export async function benchBudgetCost(n: number, rounds = 3): Promise<BudgetCostResult> {
  const total = clamp(n);
  const redis = await benchRedis();
  const graph = await startGraphApiProcess();
  try {
    const out: BudgetCostResult["rounds"] = [];
    for (let i = 0; i < rounds; i++) {
      const without = (await deliveryRun(redis.url, total, graph, {})).delivery;
      const withBudget = (await deliveryRun(redis.url, total, graph, { delivery: { messagingBudget: { uniqueRecipientsPer24h: 1_000_000 } } })).delivery;
      out.push({ without, with: withBudget });
    }
    const ratios = out.map((r) => 1 - r.with.perSecond / r.without.perSecond).sort((a, b) => a - b);
    return { rounds: out, overhead: ratios[Math.floor(ratios.length / 2)] ?? 0 };
  } finally {
    await graph.stop();
    await redis.stop();
  }
}

/**
 * Redis commands (client-sent and Lua-internal, through MONITOR) and FHIR requests per
 * appointment, for the whole path and for the send phase alone. A separate, untimed run.
 */
export async function benchDeliveryCost(n = 300): Promise<DeliveryCost> {
  const total = Math.min(clamp(n), 2_000);
  const redis = await benchRedis();
  const graph = await startGraphApiProcess();
  const fhir = seedFhir(total, new Date(Date.now() + 30 * 3_600_000));
  const poll = new Redis(redis.url, { maxRetriesPerRequest: 3 });
  try {
    const count = await startCommandCount(redis.url, [poll]);
    let atSend = count.read();
    let fhirAtSend = 0;
    const fhirAtStart = fhir.requests;
    await deliveryRun(redis.url, total, graph, { fhir, poll }, {
      beforeSend: () => {
        atSend = count.read();
        fhirAtSend = fhir.requests;
      },
    });
    const all = await count.stop();
    const before = new Map(atSend.byName);
    const byName = all.byName.map(([name, c]): [string, number] => [name, (c - (before.get(name) ?? 0)) / total]).filter(([, c]) => c > 0);
    return {
      appointments: total,
      perAppointment: { client: all.client / total, lua: all.lua / total, fhir: (fhir.requests - fhirAtStart) / total },
      perSend: { client: (all.client - atSend.client) / total, lua: (all.lua - atSend.lua) / total, fhir: (fhir.requests - fhirAtSend) / total, byName },
      isolated: redis.isolated,
    };
  } finally {
    await poll.quit();
    await graph.stop();
    await redis.stop();
  }
}

/**
 * Status events/s: signed webhook POSTs of 100 statuses each (Meta's batching) → intake →
 * apply-statuses jobs → ledger updated (all those jobs completed; the audit writes they queue run
 * alongside and are measured by the audit bench). The deliveries exist in the ledger with their
 * wamids beforehand, as after a send.
 */
export async function benchStatuses(n: number): Promise<DeliveryBenchResult> {
  const total = clamp(n);
  const prefix = `bench-${randomUUID()}`;
  const graph = await startFakeGraphApi();
  const fhir = seedFhir(0, new Date());
  const service = await startBenchService(sharedRedisUrl, fhir, graph, prefix);
  try {
    const ledger = createLedger(service.redis, prefix);
    const now = new Date().toISOString();
    const wamids = Array.from({ length: total }, (_, i) => `wamid.HBgLbench${String(i).padStart(8, "0")}`);
    for (let from = 0; from < total; from += 200) {
      await Promise.all(
        wamids.slice(from, from + 200).map(async (wamid, k) => {
          const deliveryId = `dlv_bench_${from + k}`;
          await ledger.create({
            deliveryId,
            source: "bench",
            ruleId: "appointment-booked",
            rulesHash: "bench",
            templateName: "appointment_confirmation_v1",
            category: "notification",
            resourceRef: `Appointment/a-${from + k}`,
            createdAt: now,
            updatedAt: now,
          });
          await ledger.set(deliveryId, { wamid });
          await ledger.indexWamid(wamid, deliveryId);
          await ledger.append(deliveryId, { state: "accepted", at: now });
        }),
      );
    }
    const ts = Math.floor(Date.now() / 1000);
    const bodies: string[] = [];
    for (let from = 0; from < total; from += 100) {
      bodies.push(
        buildStatusWebhook({
          phoneNumberId: graph.phoneNumberId,
          statuses: wamids.slice(from, from + 100).map((wamid, k) => ({ wamid, status: "delivered" as const, timestamp: ts, callbackData: `dlv_bench_${from + k}` })),
        }),
      );
    }
    const webhook = service.queues.byName.webhook;
    const t0 = performance.now();
    // 16 posts in flight, like Meta's parallel webhook deliveries.
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = next++; i < bodies.length; i = next++) {
          const body = bodies[i]!;
          const res = await fetch(`${service.url}/hooks/whatsapp`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-hub-signature-256": signWebhook(body, appSecret) },
            body,
          });
          if (res.status !== 200) throw new Error(`bench: webhook answered ${res.status}`);
        }
      }),
    );
    await until("every status applied", async () => ((await webhook.getJobCounts("completed")).completed ?? 0) >= bodies.length);
    const statuses = rate(total, performance.now() - t0);
    return { delivery: statuses, ceiling: await bareQueueCeiling(sharedRedisUrl, total) };
  } finally {
    await service.stop();
    await graph.stop();
    await deleteKeysAt(sharedRedisUrl, prefix);
  }
}

// `tsx bench/delivery.bench.ts [n]` runs them on their own; bench/run.ts can import them.
if (import.meta.url === `file://${process.argv[1] ?? ""}`) {
  const n = Number(process.argv[2] ?? 5_000);
  const fmt = (t: Throughput) => `${Math.round(t.perSecond).toLocaleString("en-US")}/s (${t.items} in ${Math.round(t.elapsedMs)} ms)`;
  const d = await benchDelivery(n);
  process.stdout.write(`delivery: queued decisions → fake Graph ack, write-back drained: ${fmt(d.delivery)} | same send + ledger script in bare BullMQ ${fmt(d.ceiling)} | target ≥ 1,000/s\n`);
  const a = await benchDelivery(n, { auditProcess: true });
  process.stdout.write(`delivery, audit in a second worker process: ${fmt(a.delivery)} | same send + ledger script in bare BullMQ ${fmt(a.ceiling)} | target ≥ 1,000/s\n`);
  process.stdout.write(`delivery cost: ${JSON.stringify(await benchDeliveryCost(300))}\n`);
  const s = await benchStatuses(n);
  process.stdout.write(`statuses: signed webhook batches of 100 → ledger updated: ${fmt(s.delivery)} | bare BullMQ add+no-op ${fmt(s.ceiling)} | target ≥ 3,000/s\n`);
}
