import { randomUUID } from "node:crypto";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
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
import { deleteKeysAt } from "../test/support/redis-prefix.js";
import { startGraphApiProcess } from "./graph-api-process.js";

const redisUrl = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const appSecret = "bench-app-secret";
const maxItems = 50_000;
const timeLimitMs = 120_000;

export interface Throughput {
  items: number;
  elapsedMs: number;
  perSecond: number;
}

export interface DeliveryBenchResult {
  /** benchDelivery: from queued decisions (send-message jobs) to the fake Graph API's ack. */
  delivery: Throughput;
  /** benchDelivery only: from notifications (process-event jobs) to ack, intake included. */
  fromNotification?: Throughput;
  /** n bare BullMQ add + no-op process jobs, same Redis, same run. */
  ceiling: Throughput;
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

const cleanup = (prefix: string): Promise<void> => deleteKeysAt(redisUrl, prefix);

/** The whole service (role all) on an in-memory FhirPort, the live client pointed at the fake Graph API. */
async function startBenchService(
  fhir: FakeFhir,
  graph: Pick<FakeGraphApi, "url" | "phoneNumberId" | "accessToken">,
  prefix: string,
  queues: readonly string[] = ["intake", "delivery", "audit", "webhook"],
): Promise<RunningService> {
  const config = configSchema.parse({
    http: { port: 0 },
    log: { level: "silent" },
    redis: { url: redisUrl, prefix },
    fhir: { baseUrl: fhir.baseUrl },
    whatsapp: { phoneNumberId: graph.phoneNumberId, accessToken: graph.accessToken, apiBase: graph.url, appSecret },
    delivery: { quietHours: { enabled: false }, rateLimits: { perSenderPerSecond: 1000 } },
    mapping: {
      consent: { mode: "none" },
      locations: { "Location/loc-1": { label: "Riverside Clinic", timeZone: "America/New_York" } },
      organization: { reference: "Organization/org-1", displayName: "Riverside Health" },
    },
    workers: { queues },
  });
  return startService({ config, fhir, log: createLogger("silent"), clock: systemClock, metrics: createMetrics({ defaultMetrics: false }) });
}

function seedFhir(n: number, start: Date): FakeFhir {
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
async function bareQueueCeiling(n: number): Promise<Throughput> {
  const prefix = `bench-${randomUUID()}`;
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue("ceiling", { connection, prefix });
  let done = 0;
  const worker = new Worker("ceiling", () => Promise.resolve(++done), { connection: { url: redisUrl, maxRetriesPerRequest: null }, prefix, concurrency: 32 });
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
    await connection.quit();
    await cleanup(prefix);
  }
}

/**
 * End-to-end messages/s: n process-event jobs enqueued in bulk (decisions already "arrived") →
 * mapping → schedule → send worker (re-check, rate gates at 1,000/s, live client) → the fake
 * Graph API's acknowledgement. Only confirmations count; the reminders wait 6 h and are not sent.
 * The fake Graph API runs in its own process, as Meta's servers are not on our core. With
 * `auditProcess`, Communication write-back runs in a second worker process (WORKER_QUEUES=audit)
 * instead of this one.
 */
export async function benchDelivery(n: number, opts: { auditProcess?: boolean } = {}): Promise<DeliveryBenchResult> {
  const total = clamp(n);
  const prefix = `bench-${randomUUID()}`;
  const graph = await startGraphApiProcess();
  const fhir = seedFhir(total, new Date(Date.now() + 30 * 3_600_000));
  const auditor = opts.auditProcess === true ? await startAuditWorkerProcess(redisUrl, prefix) : undefined;
  const service = await startBenchService(fhir, graph, prefix, auditor !== undefined ? ["intake", "delivery", "webhook"] : undefined);
  try {
    const receivedAt = new Date().toISOString();
    // Phase 1 — notifications to queued decisions: intake runs with the delivery queue paused, so
    // the second phase starts from decisions already queued (what the target names).
    await service.queues.byName.delivery.pause();
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
    await until("every event decided", async () => {
      const c = await service.queues.byName.intake.getJobCounts("completed");
      return (c.completed ?? 0) >= total;
    });
    // The decisions' own write-backs (queued Communications) belong to this phase, not the next.
    await until("the decisions' audit writes", async () => {
      const c = await service.queues.byName.audit.getJobCounts("waiting", "active");
      return (c.waiting ?? 0) + (c.active ?? 0) === 0;
    });
    const t1 = performance.now();
    await service.queues.byName.delivery.resume();
    await until("every confirmation acknowledged", async () => (await graph.accepted()) >= total);
    const t2 = performance.now();
    return { delivery: rate(total, t2 - t1), fromNotification: rate(total, t2 - t0), ceiling: await bareQueueCeiling(total) };
  } finally {
    await service.stop();
    await auditor?.stop();
    await graph.stop();
    await cleanup(prefix);
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
  const service = await startBenchService(fhir, graph, prefix);
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
    return { delivery: statuses, ceiling: await bareQueueCeiling(total) };
  } finally {
    await service.stop();
    await graph.stop();
    await cleanup(prefix);
  }
}

// `tsx bench/delivery.bench.ts [n]` runs both on their own; bench/run.ts can import them.
if (import.meta.url === `file://${process.argv[1] ?? ""}`) {
  const n = Number(process.argv[2] ?? 5_000);
  const fmt = (t: Throughput) => `${Math.round(t.perSecond).toLocaleString("en-US")}/s (${t.items} in ${Math.round(t.elapsedMs)} ms)`;
  const d = await benchDelivery(n);
  process.stdout.write(`delivery: queued decisions → fake Graph ack: ${fmt(d.delivery)} | bare BullMQ add+no-op ${fmt(d.ceiling)} | target ≥ 1,000/s\n`);
  const a = await benchDelivery(n, { auditProcess: true });
  process.stdout.write(`delivery, audit in a second worker process: ${fmt(a.delivery)} | bare BullMQ add+no-op ${fmt(a.ceiling)} | target ≥ 1,000/s\n`);
  const s = await benchStatuses(n);
  process.stdout.write(`statuses: signed webhook batches of 100 → ledger updated: ${fmt(s.delivery)} | bare BullMQ add+no-op ${fmt(s.ceiling)} | target ≥ 3,000/s\n`);
}
