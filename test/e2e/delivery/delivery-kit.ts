import { onTestFinished } from "vitest";
import type { Job } from "bullmq";
import type { Appointment, Bundle, Communication, Consent, Patient } from "fhir/r4";
import { createLedger, type LedgerRecord } from "../../../src/delivery/ledger.js";
import type { Clock } from "../../../src/shared/clock.js";
import { startFakeGraphApi, buildStatusWebhook, signWebhook, type FakeGraphApi, type StatusSpec } from "../../fakes/graph-api.server.js";
import { startTestService } from "../../support/start-test-service.js";
import { waitFor } from "../../support/wait-for.js";
import { deliveryOfCallback } from "../../support/callback-data.js";

export const appSecret = "delivery-e2e-app-secret";

/**
 * The whole service with the live Cloud API client pointed at the fake Graph server, sandbox FHIR
 * over real HTTP and a real Redis. Retries are short (3 attempts, 50 ms base) so the retry paths
 * run in milliseconds, and the per-recipient gate is 50 ms so a retry is not held by it.
 */
export async function startDeliveryService(opts: { clock?: Clock; config?: Record<string, unknown> } = {}) {
  const graph = await startFakeGraphApi();
  onTestFinished(() => graph.stop());
  const service = await startTestService({
    ...(opts.clock !== undefined ? { clock: opts.clock } : {}),
    config: {
      whatsapp: { phoneNumberId: graph.phoneNumberId, accessToken: graph.accessToken, apiBase: graph.url, appSecret, timeoutMs: 5_000 },
      delivery: { retries: { attempts: 3, backoffMs: 50 }, rateLimits: { perRecipientSeconds: 0.05 } },
      ...opts.config,
    },
  });
  const ledger = createLedger(service.redis, service.config.redis.prefix);
  const seed = service.sandboxSeed!;

  async function fhir<T>(path: string, init?: RequestInit): Promise<T> {
    const res = await fetch(`${service.fhirBaseUrl}/${path}`, { ...init, headers: { "content-type": "application/fhir+json", ...(init?.headers ?? {}) } });
    if (!res.ok) throw new Error(`${init?.method ?? "GET"} ${path} answered ${res.status}`);
    return (await res.json()) as T;
  }

  return {
    service,
    graph,
    ledger,
    seed,
    fhir,

    /** A consenting patient with this mobile number (E.164, fictional 555-01xx range). */
    async addPatient(phone: string, given = "Jordan"): Promise<string> {
      const patient = await fhir<Patient>("Patient", {
        method: "POST",
        body: JSON.stringify({
          resourceType: "Patient",
          active: true,
          name: [{ use: "official", given: [given], family: "Okafor" }],
          telecom: [{ system: "phone", value: phone, use: "mobile", rank: 1 }],
          communication: [{ language: { coding: [{ system: "urn:ietf:bcp:47", code: "en-US" }] }, preferred: true }],
          managingOrganization: { reference: `Organization/${seed.organizationId}` },
        } satisfies Patient),
      });
      await fhir<Consent>("Consent", {
        method: "POST",
        body: JSON.stringify({
          resourceType: "Consent",
          status: "active",
          scope: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/consentscope", code: "patient-privacy" }] },
          category: [{ coding: [{ system: "https://fhir-notify.dev/fhir/CodeSystem/consent-category", code: "whatsapp-logistics" }] }],
          patient: { reference: `Patient/${patient.id!}` },
          dateTime: new Date().toISOString(),
          organization: [{ reference: `Organization/${seed.organizationId}` }],
          policyRule: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "OPTIN" }] },
          provision: { type: "permit" },
        } satisfies Consent),
      });
      return patient.id!;
    },

    /** Books an appointment for the patient; returns the stored resource. */
    async book(patientId: string, start: Date): Promise<Appointment & { id: string }> {
      return fhir<Appointment & { id: string }>("Appointment", { method: "POST", body: JSON.stringify(appointment(patientId, seed, start)) });
    },

    async update(resource: Appointment & { id: string }): Promise<Appointment & { id: string }> {
      return fhir<Appointment & { id: string }>(`Appointment/${resource.id}`, { method: "PUT", body: JSON.stringify(resource) });
    },

    /** The delivery the given rule made for the appointment (optionally: for this start). */
    async delivery(ruleId: string, appointmentId: string, predicate: (r: LedgerRecord) => boolean = () => true): Promise<LedgerRecord> {
      return waitFor(`a ${ruleId} delivery for Appointment/${appointmentId}`, async () => {
        for (const id of await ledger.recent(1_000)) {
          const r = await ledger.get(id);
          if (r?.ruleId === ruleId && r.resourceRef === `Appointment/${appointmentId}` && predicate(r)) return r;
        }
        return undefined;
      });
    },

    async deliveryJob(deliveryId: string): Promise<Job> {
      return waitFor(`the send job ${deliveryId}`, () => service.queues.byName.delivery.getJob(deliveryId));
    },

    /** Waits until the delivery's record satisfies the predicate. */
    async until(deliveryId: string, what: string, predicate: (r: LedgerRecord) => boolean, timeoutMs = 10_000): Promise<LedgerRecord> {
      return waitFor(what, async () => {
        const r = await ledger.get(deliveryId);
        return r !== undefined && predicate(r) ? r : undefined;
      }, timeoutMs);
    },

    /**
     * Waits until the send job sits in the delayed set with the given ledger condition, and returns
     * it. `minDelayMs` tells a deliberate deferral from a retry backoff of a few ms.
     */
    async delayed(deliveryId: string, predicate: (r: LedgerRecord) => boolean = () => true, minDelayMs = 0): Promise<Job> {
      return waitFor(`send job ${deliveryId} delayed`, async () => {
        // State first: the delay field is written in the same script that moves the job to
        // delayed, so reading the job after seeing that state gives this deferral's delay.
        if ((await service.queues.byName.delivery.getJobState(deliveryId)) !== "delayed") return undefined;
        const job = await service.queues.byName.delivery.getJob(deliveryId);
        if (job === undefined || job.delay < minDelayMs) return undefined;
        const r = await ledger.get(deliveryId);
        return r !== undefined && predicate(r) ? job : undefined;
      });
    },

    /** The Communication for this delivery once the predicate holds. */
    async communication(deliveryId: string, predicate: (c: Communication) => boolean): Promise<Communication> {
      return waitFor(`the Communication of ${deliveryId}`, async () => {
        const bundle = await fhir<Bundle>(`Communication?identifier=${encodeURIComponent(`https://fhir-notify.dev/sid/notification-key|${deliveryId}`)}`);
        const c = bundle.entry?.[0]?.resource as Communication | undefined;
        return c !== undefined && predicate(c) ? c : undefined;
      });
    },

    /** A signed status webhook, posted the way Meta does. */
    async postStatuses(statuses: StatusSpec[]): Promise<Response> {
      const body = buildStatusWebhook({ phoneNumberId: graph.phoneNumberId, statuses });
      return fetch(`${service.url}/hooks/whatsapp`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-hub-signature-256": signWebhook(body, appSecret) },
        body,
      });
    },

    /** The message the fake Graph API accepted for this delivery (callback data is its opaque token). */
    async sentFor(deliveryId: string) {
      for (const m of graph.records) if (m.callbackData !== undefined && (await deliveryOfCallback(service, m.callbackData)) === deliveryId) return m;
      return undefined;
    },

    admin(path: string, init?: RequestInit): Promise<Response> {
      return fetch(`${service.url}${path}`, init);
    },
  };
}

export type DeliveryKit = Awaited<ReturnType<typeof startDeliveryService>>;

/** A booked appointment at the seeded clinic, with clinical text that must never be sent. */
export function appointment(patientId: string, seed: { practitionerId: string; locationId: string }, start: Date): Appointment {
  return {
    resourceType: "Appointment",
    status: "booked",
    serviceType: [{ text: "Cardiology follow-up" }],
    reasonCode: [{ text: "Review of echocardiogram" }],
    start: start.toISOString(),
    end: new Date(start.getTime() + 30 * 60_000).toISOString(),
    participant: [
      { actor: { reference: `Patient/${patientId}` }, status: "accepted" },
      { actor: { reference: `Practitioner/${seed.practitionerId}` }, status: "accepted" },
      { actor: { reference: `Location/${seed.locationId}` }, status: "accepted" },
    ],
  };
}

/** A start `hours` from `from`, on a whole minute so distinct values are stable. */
export function startIn(hours: number, from = new Date()): Date {
  const d = new Date(from.getTime() + hours * 3_600_000);
  d.setUTCSeconds(0, 0);
  return d;
}

/** The fake server's requests for one number (digits only), with their HTTP status. */
export function requestsTo(graph: FakeGraphApi, phone: string): number[] {
  const to = phone.replace(/^\+/, "");
  return graph.requests.filter((r) => r.to === to).map((r) => r.status);
}
