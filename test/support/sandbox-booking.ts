import type { Appointment } from "fhir/r4";

/** The seeded sandbox resources an appointment refers to (SandboxSeed has these and more). */
export interface SeedRefs {
  patientId: string;
  practitionerId: string;
  locationId: string;
}

/**
 * A booked appointment `startsInHours` from now (on the half hour) for the seeded patient,
 * practitioner and location. `details` adds what a test needs, typically clinical text that
 * must never reach a message or a log.
 */
export function bookedAppointment(seed: SeedRefs, options: { startsInHours?: number; details?: Partial<Appointment> } = {}): Appointment {
  const start = new Date(Date.now() + (options.startsInHours ?? 30) * 3600_000);
  start.setUTCMinutes(30, 0, 0);
  return {
    resourceType: "Appointment",
    status: "booked",
    ...options.details,
    start: start.toISOString(),
    end: new Date(start.getTime() + 30 * 60_000).toISOString(),
    participant: [
      { actor: { reference: `Patient/${seed.patientId}` }, status: "accepted" },
      { actor: { reference: `Practitioner/${seed.practitionerId}` }, status: "accepted" },
      { actor: { reference: `Location/${seed.locationId}` }, status: "accepted" },
    ],
  };
}

/** JSON over HTTP to a FHIR server (the sandbox); a non-2xx answer fails the test with its body. */
export async function fhirJson<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, { ...init, headers: { "content-type": "application/fhir+json", ...(init?.headers ?? {}) } });
  if (!res.ok) throw new Error(`${init?.method ?? "GET"} ${url} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}

/**
 * Deliver an Appointment notification to the service's "sandbox" source again, as a retrying FHIR
 * server does (HAPI-style PUT {endpoint}/Appointment/{id} with the resource, bearer token).
 */
export function redeliverToSandboxSource(service: { url: string; sources: Record<string, { auth: unknown }> }, appointment: Appointment & { id?: string }): Promise<Response> {
  const token = (service.sources.sandbox?.auth as { token: string }).token;
  return fetch(`${service.url}/hooks/fhir/sandbox/Appointment/${appointment.id ?? ""}`, {
    method: "PUT",
    headers: { "content-type": "application/fhir+json", authorization: `Bearer ${token}` },
    body: JSON.stringify(appointment),
  });
}
