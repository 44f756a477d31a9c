import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import type { Appointment, Bundle, Communication } from "fhir/r4";
import { configSchema } from "../src/config/config.schema.js";
import { createFhirClient } from "../src/fhir/fhir.client.js";
import { fhirClientConfigSchema } from "../src/fhir/fhir.config.js";
import { freePort } from "../src/redis/embedded-redis.js";
import { createSandboxFhir } from "../src/sandbox/sandbox-fhir.js";
import { startService } from "../src/service.js";
import { systemClock } from "../src/shared/clock.js";
import { createLogger } from "../src/shared/logger.js";
import { createMetrics } from "../src/shared/metrics.js";
import { deleteKeysAt } from "../test/support/redis-prefix.js";

const redisUrl = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const concurrency = 16;
const maxWrites = 20_000;
const maxMessages = 500;
const keySystem = "https://fhir-notify.dev/sid/notification-key";

export interface WriteRate {
  writes: number;
  elapsedMs: number;
  perSecond: number;
}

export interface AuditBenchResult {
  /** Conditional creates (If-None-Exist on the notification key), as the audit worker writes. */
  conditional: WriteRate;
  /** Plain creates of the same resources in the same run: what the server and client allow at most. */
  ceiling: WriteRate;
  /** Full pipeline burst through the dry-run outbox (queued → accepted → sent → delivered). */
  lifecycle: { messages: number; steps: number; writes: number; unchanged: number; writesPerMessage: number; writesPerStep: number; elapsedMs: number };
}

function communication(i: number, run: string): Communication {
  return {
    resourceType: "Communication",
    identifier: [{ system: keySystem, value: `dlv_bench_${run}_${i}` }],
    status: "preparation",
    category: [{ coding: [{ system: "http://terminology.hl7.org/CodeSystem/communication-category", code: "notification" }] }],
    medium: [{ coding: [{ system: "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode", code: "APPWRIT" }], text: "WhatsApp" }],
    subject: { reference: `Patient/p-${i % 500}` },
    about: [{ reference: `Appointment/a-${i}` }],
    recipient: [{ reference: `Patient/p-${i % 500}` }],
  };
}

async function lanes(total: number, one: (i: number) => Promise<void>): Promise<WriteRate> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (next < total) await one(next++);
    }),
  );
  const elapsedMs = performance.now() - started;
  return { writes: total, elapsedMs: Math.round(elapsedMs), perSecond: Math.round((total / elapsedMs) * 1000) };
}

/**
 * Communication writes per second through our FHIR client to the sandbox over real HTTP (a fresh
 * sandbox per measurement, so both start empty). The sandbox answers If-None-Exist with an
 * in-memory search, so its cost grows with the number of stored Communications: keep n modest.
 */
async function writeRates(n: number): Promise<{ conditional: WriteRate; ceiling: WriteRate }> {
  const measure = async (conditional: boolean): Promise<WriteRate> => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}/sandbox/fhir`;
    const log = createLogger("silent");
    const sandbox = createSandboxFhir({ publicBaseUrl: base, log });
    const server = serve({ fetch: new Hono().route("/sandbox/fhir", sandbox.app).fetch, port, hostname: "127.0.0.1" });
    try {
      const client = createFhirClient(fhirClientConfigSchema.parse({ baseUrl: base }), log);
      const run = randomUUID().slice(0, 8);
      return await lanes(n, async (i) => {
        const resource = communication(i, run);
        const key = resource.identifier![0]!;
        const { created } = await client.create(resource, conditional ? { ifNoneExist: `identifier=${encodeURIComponent(`${key.system!}|${key.value!}`)}` } : undefined);
        if (!created) throw new Error("a conditional create matched an existing Communication");
      });
    } finally {
      server.close();
      await sandbox.close();
    }
  };
  // Ceiling first, so a warm-up advantage, if any, goes to the ceiling.
  const ceiling = await measure(false);
  const conditional = await measure(true);
  return { conditional, ceiling };
}

const cleanup = (prefix: string): Promise<void> => deleteKeysAt(redisUrl, prefix);

/**
 * The whole service (sandbox FHIR, Redis, dry-run outbox) fed `messages` booked appointments at
 * once; counts Communication writes (created + updated) once every Communication is completed.
 */
async function lifecycleBurst(messages: number): Promise<AuditBenchResult["lifecycle"]> {
  const prefix = `bench-${randomUUID()}`;
  const config = configSchema.parse({
    http: { port: 0 },
    redis: { url: redisUrl, prefix },
    // One demo patient receives every message: lift the 6 s pair rate that would serialise them.
    delivery: { rateLimits: { perRecipientSeconds: 0.001 }, quietHours: { enabled: false } },
  });
  const metrics = createMetrics({ defaultMetrics: false });
  const service = await startService({ config, log: createLogger("silent"), clock: systemClock, metrics, outboxStatusDelayMs: 5 });
  try {
    const seed = service.sandboxSeed!;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: messages }, async (_, i) => {
        // Inside the 24 h reminder lead, so each appointment fires exactly one message.
        const start = new Date(Date.now() + (12 + (i % 8)) * 3600_000);
        start.setUTCMinutes(0, 0, 0);
        const appointment: Appointment = {
          resourceType: "Appointment",
          status: "booked",
          start: start.toISOString(),
          end: new Date(start.getTime() + 1_800_000).toISOString(),
          participant: [
            { actor: { reference: `Patient/${seed.patientId}` }, status: "accepted" },
            { actor: { reference: `Location/${seed.locationId}` }, status: "accepted" },
          ],
        };
        const res = await fetch(`${service.fhirBaseUrl}/Appointment`, { method: "POST", headers: { "content-type": "application/fhir+json" }, body: JSON.stringify(appointment) });
        if (res.status !== 201) throw new Error(`sandbox answered ${res.status}`);
      }),
    );
    const deadline = Date.now() + 120_000;
    for (;;) {
      const bundle = (await (await fetch(`${service.fhirBaseUrl}/Communication?status=completed&_count=1000`)).json()) as Bundle;
      const counts = await service.queues.byName.audit.getJobCounts("waiting", "active", "delayed");
      if ((bundle.entry?.length ?? 0) >= messages && (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) === 0) break;
      if (Date.now() > deadline) throw new Error("lifecycle burst did not complete within 120 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    const elapsedMs = Math.round(performance.now() - started);
    const values = Object.fromEntries((await metrics.communicationWrites.get()).values.map((v) => [String(v.labels.result), v.value]));
    const writes = (values.created ?? 0) + (values.updated ?? 0);
    // queued → accepted → sent → delivered: the four steps the dry-run outbox drives.
    const steps = messages * 4;
    return { messages, steps, writes, unchanged: values.unchanged ?? 0, writesPerMessage: writes / messages, writesPerStep: writes / steps, elapsedMs };
  } finally {
    await service.stop();
    await cleanup(prefix);
  }
}

/** Communication writes/s (conditional vs plain creates) and audit writes per message for a burst. */
export async function benchAudit(n: number): Promise<AuditBenchResult> {
  const total = Math.min(Math.max(1, Math.floor(n)), maxWrites);
  const { conditional, ceiling } = await writeRates(total);
  const lifecycle = await lifecycleBurst(Math.min(Math.max(1, Math.floor(total / 20)), maxMessages));
  return { conditional, ceiling, lifecycle };
}

// npx tsx bench/audit.bench.ts [n]
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await benchAudit(Number(process.argv[2] ?? 2_000));
  const { conditional, ceiling, lifecycle } = result;
  process.stdout.write(
    `audit: conditional creates ${conditional.perSecond}/s | ceiling (plain creates) ${ceiling.perSecond}/s → ${Math.round((100 * conditional.perSecond) / ceiling.perSecond)}% of ceiling\n` +
      `audit: lifecycle burst ${lifecycle.messages} messages, ${lifecycle.writes} writes (${lifecycle.writesPerMessage.toFixed(2)}/message, ${lifecycle.writesPerStep.toFixed(2)}/step, ${lifecycle.unchanged} skipped as unchanged) in ${lifecycle.elapsedMs} ms | target ≤ 1 write per step\n`,
  );
}
