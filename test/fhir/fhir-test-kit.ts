import type { Appointment, Bundle, Communication, OperationOutcome } from "fhir/r4";
import { createFhirClient, type FhirClientDeps } from "../../src/fhir/fhir.client.js";
import { fhirClientConfigSchema } from "../../src/fhir/fhir.config.js";
import type { FhirCallInfo } from "../../src/fhir/exchange.js";
import { manualClock } from "../../src/shared/clock.js";
import { createLogger } from "../../src/shared/logger.js";

export const base = "https://fhir.example.org/fhir";

/** A client whose waits are recorded instead of slept, with jitter pinned to the middle. */
export function buildClient(config: Record<string, unknown> = {}, deps: FhirClientDeps = {}) {
  const sleeps: number[] = [];
  const calls: FhirCallInfo[] = [];
  const clock = manualClock("2025-03-12T09:00:00Z");
  const cfg = fhirClientConfigSchema.parse({ baseUrl: base, timeoutMs: 2_000, retries: 3, ...config });
  const client = createFhirClient(cfg, createLogger("silent"), {
    clock,
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    random: () => 0.5,
    onCall: (info) => calls.push(info),
    ...deps,
  });
  return { client, sleeps, calls, clock };
}

export const fhirJsonHeaders = { "content-type": "application/fhir+json" };

export const appointment: Appointment = {
  resourceType: "Appointment",
  id: "apt-7781",
  meta: { versionId: "3", lastUpdated: "2025-03-11T16:02:11.000+00:00" },
  status: "booked",
  serviceType: [{ coding: [{ system: "http://snomed.info/sct", code: "394814009", display: "General practice" }] }],
  start: "2025-03-13T10:30:00+01:00",
  end: "2025-03-13T10:50:00+01:00",
  participant: [
    { actor: { reference: "Patient/pat-1021", display: "Maria Jansen" }, status: "accepted" },
    { actor: { reference: "Location/loc-12" }, status: "accepted" },
  ],
};

export const communication: Communication = {
  resourceType: "Communication",
  identifier: [{ system: "https://fhir-notify.example.org/sid/notification-key", value: "hapi-main.Appointment.apt-7781.1741858200.appointment_reminder" }],
  status: "completed",
  subject: { reference: "Patient/pat-1021" },
  about: [{ reference: "Appointment/apt-7781" }],
  medium: [{ coding: [{ system: "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode", code: "WRITTEN" }], text: "WhatsApp template" }],
  sent: "2025-03-12T09:00:04Z",
};

export function searchset(entries: readonly Appointment[], next?: string): Bundle {
  return {
    resourceType: "Bundle",
    id: "b5a1f2c0-1",
    meta: { lastUpdated: "2025-03-12T09:00:00.000+00:00" },
    type: "searchset",
    total: entries.length,
    link: [{ relation: "self", url: `${base}/Appointment?status=booked` }, ...(next !== undefined ? [{ relation: "next", url: next }] : [])],
    entry: entries.map((resource) => ({ fullUrl: `${base}/Appointment/${resource.id}`, resource, search: { mode: "match" } })),
  };
}

/** What HAPI sends on a validation failure: the diagnostics quote the submitted value. */
export function hapiOutcome(code: string, diagnostics: string): OperationOutcome {
  return {
    resourceType: "OperationOutcome",
    issue: [
      {
        severity: "error",
        code,
        details: { coding: [{ system: "https://hapifhir.io/fhir/CodeSystem/hapi-fhir-error-code", code: "HAPI-0450", display: diagnostics }], text: diagnostics },
        diagnostics,
        expression: ["Communication.sent"],
      },
    ],
  };
}
