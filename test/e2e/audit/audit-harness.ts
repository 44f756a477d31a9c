import { readFileSync } from "node:fs";
import type { Appointment, Bundle, Communication, Consent, FhirResource, Patient } from "fhir/r4";
import { parse } from "yaml";
import { expect, onTestFinished } from "vitest";
import type { QueueName } from "../../../src/delivery/jobs.js";
import type { RunningService } from "../../../src/service.js";
import { buildInboundWebhook, buildStatusWebhook, signWebhook, startFakeGraphApi, type FakeGraphApi, type StatusSpec } from "../../fakes/graph-api.server.js";
import { startTestService } from "../../support/start-test-service.js";
import { waitFor } from "../../support/wait-for.js";
import { r4Errors } from "../../audit/r4-validation.js";
import { bookedAppointment as booked, fhirJson, type SeedRefs } from "../../support/sandbox-booking.js";

export { fhirJson };

/** A booked appointment whose service, reason and description must never reach a message. */
export const bookedAppointment = (seed: SeedRefs, serviceText = "Oncology follow-up", startsInHours = 20): Appointment =>
  booked(seed, {
    startsInHours,
    details: { serviceType: [{ text: serviceText }], reasonCode: [{ text: "Follow-up of breast lesion biopsy" }], description: "Review biopsy results" },
  });

/*
 * Shared steps of the audit-trail e2e tests: the whole service over real HTTP, the sandbox FHIR
 * server, and (for the live client) the fake Graph API with signed webhooks posted like Meta does.
 */

export const appSecret = "audit-e2e-app-secret-0123456789";
export const notificationKeySystem = "https://fhir-notify.dev/sid/notification-key";
export const wamidSystem = "https://fhir-notify.dev/sid/whatsapp-message-id";
export const inboundIdSystem = "https://fhir-notify.dev/sid/whatsapp-inbound-id";
export const readAtUrl = "https://fhir-notify.dev/fhir/StructureDefinition/read-at";
export const notDoneReasonSystem = "http://terminology.hl7.org/CodeSystem/communication-not-done-reason";

export type Service = Awaited<ReturnType<typeof startTestService>>;

/** The service sending through the real Cloud API client to the fake Graph API; webhooks must be signed. */
export async function startLiveService(config: Record<string, unknown> = {}): Promise<{ service: Service; graph: FakeGraphApi }> {
  const graph = await startFakeGraphApi();
  const { whatsapp, ...rest } = config as { whatsapp?: Record<string, unknown> };
  const service = await startTestService({
    config: { whatsapp: { phoneNumberId: graph.phoneNumberId, accessToken: graph.accessToken, apiBase: graph.url, appSecret, ...whatsapp }, ...rest },
  });
  onTestFinished(() => graph.stop());
  return { service, graph };
}


export function post<T extends FhirResource>(service: RunningService, resource: T): Promise<T & { id: string }> {
  return fhirJson(`${service.fhirBaseUrl}/${resource.resourceType}`, { method: "POST", body: JSON.stringify(resource) });
}

/** PUT with a chosen id (update-as-create), for resources the configuration names by id. */
export function putWithId<T extends FhirResource & { id: string }>(service: RunningService, resource: T): Promise<T> {
  return fhirJson(`${service.fhirBaseUrl}/${resource.resourceType}/${resource.id}`, { method: "PUT", body: JSON.stringify(resource) });
}

/**
 * A booked appointment 20 hours ahead (inside the 24 h reminder lead, so only the confirmation
 * fires), with clinical details that must never reach a message or the audit trail.
 */

/** A synthetic patient (555-01xx numbers are reserved for fiction). */
export function patient(opts: { given: string; phone?: { value: string; use: "mobile" | "home" }; language?: string }): Patient {
  return {
    resourceType: "Patient",
    active: true,
    name: [{ use: "official", given: [opts.given], family: "Okafor" }],
    telecom: opts.phone === undefined ? [{ system: "email", value: "c.okafor@example.org" }] : [{ system: "phone", value: opts.phone.value, use: opts.phone.use }],
    ...(opts.language !== undefined ? { communication: [{ language: { coding: [{ system: "urn:ietf:bcp:47", code: opts.language }] }, preferred: true }] } : {}),
  };
}

/** The opt-in the default consent mode looks for (same category as the sandbox seed). */
export function whatsappConsent(patientId: string, organizationId: string): Consent {
  return {
    resourceType: "Consent",
    status: "active",
    scope: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/consentscope", code: "patient-privacy" }] },
    category: [{ coding: [{ system: "https://fhir-notify.dev/fhir/CodeSystem/consent-category", code: "whatsapp-logistics" }] }],
    patient: { reference: `Patient/${patientId}` },
    dateTime: new Date().toISOString(),
    organization: [{ reference: `Organization/${organizationId}` }],
    policyRule: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "OPTIN" }] },
    provision: { type: "permit" },
  };
}

/** Every Communication about one resource, through the sandbox's `about` search parameter. */
export async function communicationsAbout(service: RunningService, ref: string): Promise<Communication[]> {
  const bundle = await fhirJson<Bundle>(`${service.fhirBaseUrl}/Communication?about=${encodeURIComponent(ref)}&_count=100`);
  return (bundle.entry ?? []).map((e) => e.resource as Communication);
}

/** Wait until exactly one Communication is about `ref` and `done` holds for it. */
export function waitForCommunication(service: RunningService, ref: string, what: string, done: (c: Communication) => boolean, timeoutMs = 10_000): Promise<Communication> {
  return waitFor(
    what,
    async () => {
      const found = await communicationsAbout(service, ref);
      const only = found.length === 1 ? found[0] : undefined;
      return only !== undefined && done(only) ? only : undefined;
    },
    timeoutMs,
  );
}

/**
 * True once nothing is waiting or running, and no retry is pending. Delayed send jobs (a reminder
 * due tomorrow) do not count: they are scheduled work, not unfinished work.
 */
export async function queuesIdle(service: RunningService, names: readonly QueueName[] = ["intake", "delivery", "webhook", "audit"]): Promise<boolean> {
  for (const name of names) {
    const c = await service.queues.byName[name].getJobCounts("waiting", "active", "delayed", "prioritized", "waiting-children");
    if (name === "delivery") c.delayed = 0;
    // The expiry sweep's next run always waits; anything else delayed (a retry) still counts.
    if (name === "webhook" && (c.delayed ?? 0) > 0) {
      const delayed = await service.queues.byName.webhook.getJobs(["delayed"]);
      c.delayed = delayed.filter((j) => j.name !== "sweep-expiry").length;
    }
    if (Object.values(c).some((n) => n > 0)) return false;
  }
  return true;
}

export function waitUntilIdle(service: RunningService, timeoutMs = 10_000): Promise<true> {
  return waitFor("all queues idle", () => queuesIdle(service), timeoutMs);
}

/** POST a Meta-serialised, signed webhook body to /hooks/whatsapp. */
export async function postWebhook(service: RunningService, body: string): Promise<void> {
  const res = await fetch(`${service.url}/hooks/whatsapp`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-hub-signature-256": signWebhook(body, appSecret) },
    body,
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

export function postStatuses(service: RunningService, phoneNumberId: string, statuses: StatusSpec[]): Promise<void> {
  return postWebhook(service, buildStatusWebhook({ phoneNumberId, statuses }));
}

export function postInbound(service: RunningService, phoneNumberId: string, message: Record<string, unknown>): Promise<void> {
  return postWebhook(service, buildInboundWebhook({ phoneNumberId, messages: [message], contacts: [{ profile: { name: "Alex" }, wa_id: String(message.from) }] }));
}

/** The template body as approved, with the parameters WhatsApp received: what the patient read. */
export function renderedConfirmation(bodyParams: readonly string[], language = "en_US"): string {
  const template = parse(readFileSync(new URL("../../../mappings/templates/appointment_confirmation_v1.yaml", import.meta.url), "utf8")) as {
    languages: Record<string, { body: string; footer?: string }>;
  };
  const { body = "", footer } = template.languages[language] ?? {};
  const text = body.replace(/\{\{(\d+)\}\}/g, (_, n: string) => bodyParams[Number(n) - 1] ?? "");
  return footer === undefined ? text : `${text}\n${footer}`;
}

export function extensionValue(c: Communication, url: string): string | undefined {
  return c.extension?.find((e) => e.url === url)?.valueDateTime;
}

/** Every version of a Communication, oldest first, as the sandbox's history interaction reports it. */
export async function versionsOf(service: RunningService, id: string): Promise<Communication[]> {
  const bundle = await fhirJson<Bundle>(`${service.fhirBaseUrl}/Communication/${id}/_history?_count=100`);
  return (bundle.entry ?? []).flatMap((e) => (e.resource !== undefined ? [e.resource as Communication] : [])).reverse();
}

/** Assert the resource is valid R4, printing the validator's findings when it is not. */
export function expectValidR4(resource: FhirResource): void {
  expect(r4Errors(resource), `${resource.resourceType}/${resource.id ?? "?"} is not valid R4`).toEqual([]);
}

/** Audit writes so far, by result, from the service's own counter. */
export async function communicationWrites(service: RunningService): Promise<Record<string, number>> {
  const metric = await service.metrics.communicationWrites.get();
  return Object.fromEntries(metric.values.map((v) => [String(v.labels.result), v.value]));
}

/** Resources of one type carrying this identifier. */
export async function byIdentifier<T extends FhirResource>(service: RunningService, type: T["resourceType"], system: string, value: string): Promise<T[]> {
  const bundle = await fhirJson<Bundle>(`${service.fhirBaseUrl}/${type}?identifier=${encodeURIComponent(`${system}|${value}`)}`);
  return (bundle.entry ?? []).map((e) => e.resource as T);
}
