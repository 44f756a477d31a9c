import { randomUUID } from "node:crypto";
import { serve, type ServerType } from "@hono/node-server";
import type { Appointment, Patient } from "fhir/r4";
import { Hono } from "hono";
import { Redis } from "ioredis";
import { onTestFinished } from "vitest";
import { configSchema, type Config } from "../../src/config/config.schema.js";
import { createLedger, type LedgerRecord } from "../../src/delivery/ledger.js";
import { freePort } from "../../src/redis/embedded-redis.js";
import { createSandboxFhir } from "../../src/sandbox/sandbox-fhir.js";
import { startService, type Role, type RunningService } from "../../src/service.js";
import { systemClock } from "../../src/shared/clock.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetrics } from "../../src/shared/metrics.js";
import { buildStatusWebhook, signWebhook, startFakeGraphApi, type FakeGraphApi } from "../fakes/graph-api.server.js";
import { captureLogs } from "../support/log-capture.js";
import { deleteKeys, testRedisUrl } from "../support/redis-prefix.js";
import { waitFor } from "../support/wait-for.js";
import { startFaultProxy, type FaultProxy } from "./fault-proxy.js";

/**
 * A world for fault scenarios: a real FHIR server (the sandbox, on its own port) behind a fault
 * proxy, the fake Graph API (behind another proxy), and any number of fhir-notify processes
 * (api / worker / all) sharing one Redis prefix, so one can be stopped and another started.
 */

export const hookToken = "reliability-hook-token-0123456789";
export const appSecret = "reliability-app-secret-0123456789";
const clinic = "Location/rel-clinic";

export interface FaultWorld {
  prefix: string;
  redisUrl: string;
  /** The FHIR server as fhir-notify sees it (through the proxy). */
  fhirProxy: FaultProxy;
  /** Direct access to the sandbox, for setup that must not be faulted. */
  fhir: Hono;
  graph: FakeGraphApi;
  graphProxy: FaultProxy;
  /** `unknownOutcomeWindowMs`: how long a send in doubt waits for a status webhook (default 1 s). */
  start(role: Role, options?: { unknownOutcomeWindowMs?: number }): Promise<RunningService & { logs: ReturnType<typeof captureLogs> }>;
  /**
   * Play Meta's part in status webhooks: a signed `sent` status for every message the fake Graph
   * API accepted, posted to `url` shortly after it accepted it, as Meta does whether or not its
   * HTTP answer reached us. Stops when the test ends.
   */
  emitSentStatuses(url: () => string): void;
  /** N booked appointments tomorrow-plus-a-month, each for its own patient and phone number. */
  seedAppointments(n: number, offset?: number): Promise<SeededAppointment[]>;
}

export interface SeededAppointment {
  appointment: Appointment & { id: string };
  /** Digits as the fake Graph API records them. */
  phone: string;
}

export async function startFaultWorld(options: { redisUrl?: string } = {}): Promise<FaultWorld> {
  const prefix = `t-${randomUUID()}`;
  const redisUrl = options.redisUrl ?? testRedisUrl;
  const quiet = createLogger("silent");

  const sandboxPort = await freePort();
  const fhirProxy = await startFaultProxy(`http://127.0.0.1:${sandboxPort}`);
  const sandbox = createSandboxFhir({ publicBaseUrl: `${fhirProxy.url}/fhir`, log: quiet });
  const fhir = new Hono().route("/fhir", sandbox.app);
  const server = await new Promise<ServerType>((done) => {
    const s = serve({ fetch: fhir.fetch, port: sandboxPort, hostname: "127.0.0.1" }, () => done(s));
  });
  const graph = await startFakeGraphApi();
  const graphProxy = await startFaultProxy(graph.url);

  const running: RunningService[] = [];
  onTestFinished(async () => {
    for (const s of running.reverse()) await s.stop();
    await graphProxy.stop();
    await graph.stop();
    await sandbox.close();
    await new Promise<void>((done) => server.close(() => done()));
    await fhirProxy.stop();
    await deletePrefix(redisUrl, prefix);
  });

  const put = async (path: string, resource: object) => {
    const res = await fhir.request(`/fhir/${path}`, { method: "PUT", headers: { "content-type": "application/fhir+json" }, body: JSON.stringify(resource) });
    if (res.status >= 300) throw new Error(`seeding ${path} answered ${res.status}: ${await res.text()}`);
    return res.json();
  };
  await put("Organization/rel-org", { resourceType: "Organization", id: "rel-org", active: true, name: "Riverside Health" });
  await put("Location/rel-clinic", { resourceType: "Location", id: "rel-clinic", status: "active", name: "Riverside Clinic", managingOrganization: { reference: "Organization/rel-org" } });

  return {
    prefix,
    redisUrl,
    fhirProxy,
    fhir,
    graph,
    graphProxy,
    async start(role, options = {}) {
      const logs = captureLogs("info");
      const config: Config = configSchema.parse({
        http: { port: 0 },
        redis: { url: redisUrl, prefix },
        fhir: { baseUrl: `${fhirProxy.url}/fhir`, timeoutMs: 1_500, retries: 2 },
        whatsapp: { phoneNumberId: graph.phoneNumberId, accessToken: graph.accessToken, apiBase: graphProxy.url, appSecret, timeoutMs: 1_000 },
        sources: { ehr: { auth: { type: "bearer", token: hookToken } } },
        mapping: {
          locations: { [clinic]: { label: "Riverside Clinic", timeZone: "America/New_York" } },
          organization: { reference: "Organization/rel-org", displayName: "Riverside Health", phone: "+1 555-555-0100" },
          consent: { mode: "none" },
        },
        delivery: { retries: { attempts: 10, backoffMs: 200 }, rateLimits: { perSenderPerSecond: 1000, perRecipientSeconds: 1 } },
        log: { level: "info" },
      });
      config.delivery.quietHours.enabled = false;
      // The schema's smallest reconcile window is a minute; the scenarios wait ~1 s instead.
      config.delivery.unknownOutcomeWindowMinutes = (options.unknownOutcomeWindowMs ?? 1_000) / 60_000;
      const service = await startService({ config, log: logs.log, clock: systemClock, role, metrics: createMetrics({ defaultMetrics: false }) });
      running.push(service);
      return { ...service, logs };
    },
    emitSentStatuses(url) {
      let posted = 0;
      let stopped = false;
      const loop = (async () => {
        while (!stopped) {
          const fresh = graph.records.slice(posted);
          if (fresh.length > 0) {
            const body = buildStatusWebhook({
              phoneNumberId: graph.phoneNumberId,
              statuses: fresh.map((r) => ({ wamid: r.wamid, status: "sent" as const, timestamp: Math.floor(Date.now() / 1000), recipientId: r.to, ...(r.callbackData !== undefined ? { callbackData: r.callbackData } : {}) })),
            });
            // Meta retries a webhook until it gets a 200; so does this.
            const res = await fetch(`${url()}/hooks/whatsapp`, { method: "POST", headers: { "content-type": "application/json", "x-hub-signature-256": signWebhook(body, appSecret) }, body }).catch(() => undefined);
            if (res?.status === 200) posted += fresh.length;
          }
          await new Promise((r) => setTimeout(r, 25));
        }
      })();
      onTestFinished(async () => {
        stopped = true;
        await loop;
      });
    },
    async seedAppointments(n, offset = 0) {
      const start = new Date(Date.now() + 30 * 24 * 3600_000);
      start.setUTCHours(15, 30, 0, 0);
      const out: SeededAppointment[] = [];
      for (let i = offset; i < offset + n; i++) {
        const digits = String(i).padStart(4, "0");
        const patient: Patient = {
          resourceType: "Patient",
          id: `rp-${i}`,
          active: true,
          name: [{ given: ["Alex"], family: "Rivera" }],
          telecom: [{ system: "phone", value: `+1202555${digits}`, use: "mobile" }],
          communication: [{ language: { coding: [{ system: "urn:ietf:bcp:47", code: "en-US" }] }, preferred: true }],
        };
        await put(`Patient/rp-${i}`, patient);
        const appointment = (await put(`Appointment/ra-${i}`, {
          resourceType: "Appointment",
          id: `ra-${i}`,
          status: "booked",
          serviceType: [{ text: "General practice" }],
          start: start.toISOString(),
          end: new Date(start.getTime() + 30 * 60_000).toISOString(),
          participant: [
            { actor: { reference: `Patient/rp-${i}` }, status: "accepted" },
            { actor: { reference: clinic }, status: "accepted" },
          ],
        })) as Appointment & { id: string };
        out.push({ appointment, phone: `1202555${digits}` });
      }
      return out;
    },
  };
}

/** What the FHIR server would send for a resource version: PUT {endpoint}/{type}/{id} with the body (HAPI style). */
export function notify(url: string, resource: { resourceType: string; id?: string }): Promise<Response> {
  return fetch(`${url}/hooks/fhir/ehr/${resource.resourceType}/${resource.id}`, {
    method: "PUT",
    headers: { "content-type": "application/fhir+json", authorization: `Bearer ${hookToken}` },
    body: JSON.stringify(resource),
  });
}

/** A FHIR server's delivery loop: retry until a 2xx (it cannot know whether a failed try was queued). */
export async function notifyUntilAccepted(url: () => string, resource: { resourceType: string; id?: string }, maxTries = 200): Promise<number> {
  for (let tries = 1; tries <= maxTries; tries++) {
    const status = await notify(url(), resource).then(
      (r) => r.status,
      () => 0,
    );
    if (status >= 200 && status < 300) return tries;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`notification for ${resource.resourceType}/${resource.id} never accepted`);
}

export interface Figures {
  scenario: string;
  accepted: number;
  sent: number;
  doubled: number;
  lost: number;
  unknownOutcome: number;
  notDone: number;
  /** Retries exhausted: parked in the dead-letter queue for an operator's replay (visible, not lost). */
  deadLettered: number;
}

const confirmation = /^appointment_confirmation/;

/**
 * Waits until every expected message is settled (sent, unknown, not-done or failed) and nothing is
 * still running, then counts. `doubled`: extra messages to one patient; `lost`: a patient with no
 * message whose delivery is not recorded anywhere an operator would see it (unknown, not-done,
 * failed, or parked in the dead-letter queue).
 */
export async function settleAndCount(world: FaultWorld, scenario: string, expected: SeededAppointment[], accepted: number, timeoutMs = 60_000): Promise<Figures> {
  const redis = new Redis(world.redisUrl, { maxRetriesPerRequest: 3 });
  const ledger = createLedger(redis, world.prefix);
  try {
    const byAppointment = async (): Promise<Map<string, LedgerRecord[]>> => {
      const ids = await ledger.recent(100_000);
      const records = (await Promise.all(ids.map((id) => ledger.get(id)))).filter((r): r is LedgerRecord => r !== undefined && r.category === "notification");
      const map = new Map<string, LedgerRecord[]>();
      for (const r of records) map.set(r.resourceRef, [...(map.get(r.resourceRef) ?? []), r]);
      return map;
    };
    const settled = new Set(["accepted", "held", "sent", "delivered", "read", "failed", "not-done", "unknown", "expired"]);
    await waitFor(
      `${scenario}: every expected message settled`,
      async () => {
        const map = await byAppointment();
        for (const e of expected) {
          const records = map.get(`Appointment/${e.appointment.id}`) ?? [];
          if (records.length === 0 || records.some((r) => !settled.has(r.state) && r.deadLettered !== true)) return false;
        }
        return true;
      },
      timeoutMs,
    ).catch(async (err: unknown) => {
      // Say where things stand, so a timeout is a finding rather than a mystery.
      const map = await byAppointment();
      const states: Record<string, number> = {};
      for (const e of expected) {
        const records = map.get(`Appointment/${e.appointment.id}`) ?? [];
        const key = records.length === 0 ? "no delivery" : records.map((r) => `${r.state}${r.inFlightSince !== undefined ? "+in-flight" : ""}${r.deadLettered === true ? "+dead-lettered" : ""}`).join(",");
        states[key] = (states[key] ?? 0) + 1;
      }
      const queues: Record<string, string> = {};
      for (const q of ["intake", "delivery", "audit"]) {
        const [wait, active, delayed, failed] = await Promise.all([redis.llen(`${world.prefix}:${q}:wait`), redis.llen(`${world.prefix}:${q}:active`), redis.zcard(`${world.prefix}:${q}:delayed`), redis.zcard(`${world.prefix}:${q}:failed`)]);
        queues[q] = `wait ${wait}, active ${active}, delayed ${delayed}, failed ${failed}`;
      }
      // For appointments with no delivery at all: what became of their intake jobs.
      const orphans: string[] = [];
      for (const e of expected.filter((x) => (map.get(`Appointment/${x.appointment.id}`) ?? []).length === 0).slice(0, 5)) {
        const [, keys] = await redis.scan("0", "MATCH", `${world.prefix}:intake:*Appointment_${e.appointment.id}_*`, "COUNT", 100_000);
        for (const key of keys) {
          const job = await redis.hgetall(key);
          orphans.push(`${key.slice(world.prefix.length)}: ${JSON.stringify({ returnvalue: job.returnvalue, failedReason: job.failedReason, attemptsMade: job.attemptsMade, finishedOn: job.finishedOn, processedOn: job.processedOn })}`);
        }
        if (keys.length === 0) orphans.push(`Appointment/${e.appointment.id}: no intake job in Redis`);
      }
      throw new Error(`${(err as Error).message}; deliveries by state: ${JSON.stringify(states)}; queues: ${JSON.stringify(queues)}; orphans: ${orphans.join(" | ")}`, { cause: err });
    });
    // Nothing still in flight that could add a second message.
    await waitFor(
      `${scenario}: queues idle`,
      async () => {
        const [intake, delivery] = await Promise.all([redisCounts(redis, world.prefix, "intake"), redisCounts(redis, world.prefix, "delivery")]);
        return intake === 0 && delivery === 0;
      },
      timeoutMs,
    );
    const map = await byAppointment();
    const figures: Figures = { scenario, accepted, sent: 0, doubled: 0, lost: 0, unknownOutcome: 0, notDone: 0, deadLettered: 0 };
    for (const e of expected) {
      const messages = world.graph.records.filter((r) => r.to === e.phone && confirmation.test(r.template)).length;
      const records = map.get(`Appointment/${e.appointment.id}`) ?? [];
      if (messages > 0) figures.sent += 1;
      figures.doubled += Math.max(0, messages - 1);
      const unknown = records.some((r) => r.state === "unknown");
      const notDone = records.some((r) => r.state === "not-done" || r.state === "failed");
      const parked = records.some((r) => r.deadLettered === true);
      if (unknown) figures.unknownOutcome += 1;
      if (notDone && messages === 0) figures.notDone += 1;
      if (parked && messages === 0) figures.deadLettered += 1;
      if (messages === 0 && !unknown && !notDone && !parked) figures.lost += 1;
    }
    return figures;
  } finally {
    await redis.quit();
  }
}

/** Jobs that could still produce a confirmation: waiting, active, or delayed for less than an hour (reminders wait days). */
async function redisCounts(redis: Redis, prefix: string, queue: string): Promise<number> {
  const [wait, active, prioritized, soon] = await Promise.all([
    redis.llen(`${prefix}:${queue}:wait`),
    redis.llen(`${prefix}:${queue}:active`),
    redis.zcard(`${prefix}:${queue}:prioritized`),
    redis.zcount(`${prefix}:${queue}:delayed`, 0, (Date.now() + 3600_000) * 4096),
  ]);
  return wait + active + prioritized + soon;
}

export function report(rows: Figures[]): void {
  console.table(rows.map((r) => ({ ...r })));
}

async function deletePrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    await deleteKeys(redis, prefix);
  } catch {
    // A scenario that stopped its own Redis leaves nothing to clean there.
  } finally {
    redis.disconnect();
  }
}
