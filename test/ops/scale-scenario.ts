import type { Appointment, Location, Organization, Patient, Practitioner } from "fhir/r4";
import { configSchema } from "../../src/config/config.schema.js";
import { startService, type RunningService } from "../../src/service.js";
import { systemClock } from "../../src/shared/clock.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetrics } from "../../src/shared/metrics.js";
import { intakeJobId } from "../../src/shared/ids.js";
import { startFakeGraphApi, type FakeGraphApi } from "../fakes/graph-api.server.js";
import { FakeFhir } from "../fakes/fhir.fake.js";
import { newRedisPrefix } from "../support/redis-prefix.js";
import { waitFor } from "../support/wait-for.js";
import { serveFakeFhir } from "./fhir-port.server.js";
import { startWorkerProcess, type WorkerProcess } from "./worker-processes.js";

export interface ScaleRun {
  workers: number;
  /** Appointments booked = messages expected. */
  events: number;
  /** Messages the fake Graph API accepted. */
  messages: number;
  /** Recipients that got more than one message (must be 0). */
  duplicates: number;
  /** From releasing the queued events to the last message accepted. */
  elapsedMs: number;
  perSecond: number;
}

export interface ScaleOptions {
  events: number;
  workers: number;
  redisUrl: string;
  /**
   * sandbox: the embedded sandbox FHIR server of the api process, notifying it by rest-hook (the
   * whole path, but the sandbox is the bottleneck). memory: an in-memory FHIR server over HTTP
   * and process-event jobs enqueued directly, so the figure is the workers' own rate.
   */
  fhir: "sandbox" | "memory";
  /** With `memory`: the store behind the HTTP FHIR server (the bench passes one indexed by identifier). */
  store?: FakeFhir;
  /** Bound on each wait, so a stuck run fails instead of hanging. */
  timeoutMs: number;
}

interface Site {
  locationId: string;
  organizationId: string;
  practitionerId: string;
}

async function pool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

async function post<T>(url: string, body: unknown): Promise<T> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/fhir+json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`POST ${url} answered ${res.status}`);
  return (await res.json()) as T;
}

/** Synthetic patient i: a fictional 202-555 number of its own, so no two messages share a recipient. */
const patient = (i: number): Patient => ({
  resourceType: "Patient",
  active: true,
  name: [{ given: ["Scale"], family: `Test${i}` }],
  telecom: [{ system: "phone", value: `+1202555${String(i).padStart(4, "0")}`, use: "mobile" }],
});

/** Booked tomorrow: one confirmation now (the reminder is a delayed job for later). */
function appointment(site: Site, patientId: string): Appointment {
  const start = new Date(Date.now() + 30 * 3600_000);
  start.setUTCMinutes(30, 0, 0);
  return {
    resourceType: "Appointment",
    status: "booked",
    start: start.toISOString(),
    end: new Date(start.getTime() + 30 * 60_000).toISOString(),
    participant: [
      { actor: { reference: `Patient/${patientId}` }, status: "accepted" },
      { actor: { reference: `Practitioner/${site.practitionerId}` }, status: "accepted" },
      { actor: { reference: `Location/${site.locationId}` }, status: "accepted" },
    ],
  };
}

/**
 * One api-role service and `workers` worker-role child processes on one Redis prefix, WhatsApp at
 * the fake Graph API, all on loopback. The events are queued while the intake queue is paused,
 * then released at once, so the figure is the drain rate.
 */
export async function runScale(options: ScaleOptions): Promise<ScaleRun> {
  if (options.events > 10_000) throw new Error("at most 10,000 events (distinct 202-555 numbers)");
  const { prefix, cleanup } = newRedisPrefix();
  const log = createLogger("warn", process.stderr);
  const stops: (() => Promise<unknown>)[] = [cleanup];
  const workers: WorkerProcess[] = [];
  try {
    const graph: FakeGraphApi = await startFakeGraphApi();
    stops.unshift(() => graph.stop());
    const base = {
      http: { port: 0 },
      redis: { url: options.redisUrl, prefix },
      whatsapp: { phoneNumberId: graph.phoneNumberId, accessToken: graph.accessToken, apiBase: graph.url },
      log: { level: "warn" },
      delivery: { quietHours: { enabled: false }, rateLimits: { perSenderPerSecond: 1000 } },
    };
    const startApi = async (fhir?: { baseUrl: string; auth: { type: "none" } }): Promise<RunningService> => {
      const api = await startService({
        config: configSchema.parse({ ...base, ...(fhir !== undefined ? { fhir } : {}) }),
        log,
        clock: systemClock,
        role: "api",
        metrics: createMetrics({ defaultMetrics: false }),
      });
      stops.unshift(() => api.stop());
      await api.queues.byName.intake.pause();
      return api;
    };

    let api: RunningService;
    let site: Site;
    if (options.fhir === "sandbox") {
      api = await startApi();
      site = api.sandboxSeed!;
      await pool(
        Array.from({ length: options.events }, (_, i) => i),
        16,
        async (i) => {
          const p = await post<Patient>(`${api.fhirBaseUrl}/Patient`, patient(i));
          await post<Appointment>(`${api.fhirBaseUrl}/Appointment`, appointment(site, p.id!));
        },
      );
    } else {
      const fake = options.store ?? new FakeFhir();
      const org = fake.put<Organization>({ resourceType: "Organization", name: "Riverside Health" });
      const loc = fake.put<Location>({ resourceType: "Location", name: "Riverside Clinic", managingOrganization: { reference: `Organization/${org.id}` } });
      const pr = fake.put<Practitioner>({ resourceType: "Practitioner", name: [{ family: "Lee", prefix: ["Dr."] }] });
      site = { locationId: loc.id, organizationId: org.id, practitionerId: pr.id };
      const server = await serveFakeFhir(fake);
      stops.unshift(() => server.stop());
      api = await startApi({ baseUrl: server.url, auth: { type: "none" } });
      const appointments = Array.from({ length: options.events }, (_, i) => fake.put(appointment(site, fake.put(patient(i)).id)));
      const receivedAt = new Date().toISOString();
      await api.queues.enqueueBulk(
        "process-event",
        appointments.map((a) => ({
          data: { source: "bench", resourceType: "Appointment", id: a.id, versionId: "1", interaction: "create" as const, receivedAt, shape: "bench" },
          options: { jobId: intakeJobId("bench", "Appointment", a.id, "1", "create") },
        })),
      );
    }
    const intake = api.queues.byName.intake;
    await waitFor("every event queued", async () => ((await intake.getJobCountByTypes("waiting")) >= options.events ? true : undefined), options.timeoutMs);

    const workerConfig = {
      ...base,
      fhir: { baseUrl: api.fhirBaseUrl, auth: { type: "none" } },
      mapping: {
        locations: { [`Location/${site.locationId}`]: { label: "Riverside Clinic", timeZone: "America/New_York" } },
        organization: { reference: `Organization/${site.organizationId}`, displayName: "Riverside Health", phone: "+1 555-555-0100" },
        // The synthetic patients carry no Consent; this run measures throughput, not consent.
        consent: { mode: "none" },
      },
    };
    workers.push(...(await Promise.all(Array.from({ length: options.workers }, () => startWorkerProcess(workerConfig)))));

    const started = performance.now();
    await intake.resume();
    await waitFor(`${options.events} messages at the fake Graph API`, () => (graph.records.length >= options.events ? true : undefined), options.timeoutMs).catch(
      (err: unknown) => {
        throw new Error(`${(err as Error).message} (got ${graph.records.length}); worker logs:\n${workers.map((w) => w.stderr()).join("\n")}`);
      },
    );
    const elapsedMs = performance.now() - started;
    // Let every send job settle before counting, so a late duplicate would be seen.
    const delivery = api.queues.byName.delivery;
    await waitFor("the delivery queue to settle", async () => ((await delivery.getJobCountByTypes("waiting", "active")) === 0 ? true : undefined), options.timeoutMs);

    const perRecipient = new Map<string, number>();
    for (const r of graph.records) perRecipient.set(r.to, (perRecipient.get(r.to) ?? 0) + 1);
    return {
      workers: options.workers,
      events: options.events,
      messages: graph.records.length,
      duplicates: [...perRecipient.values()].filter((c) => c > 1).length,
      elapsedMs,
      perSecond: (options.events * 1000) / elapsedMs,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    for (const stop of stops) await stop();
  }
}
