import type { Appointment } from "fhir/r4";
import type { Queue } from "bullmq";

/** A booked appointment `startsInHours` from now at the sandbox clinic, for the seeded patient. */
export function bookedAppointment(seed: { patientId: string; practitionerId: string; locationId: string }, startsInHours = 72): Appointment {
  const start = new Date(Date.now() + startsInHours * 3600_000);
  start.setUTCMinutes(30, 0, 0);
  return {
    resourceType: "Appointment",
    status: "booked",
    serviceType: [{ text: "General practice" }],
    start: start.toISOString(),
    end: new Date(start.getTime() + 30 * 60_000).toISOString(),
    participant: [
      { actor: { reference: `Patient/${seed.patientId}` }, status: "accepted" },
      { actor: { reference: `Practitioner/${seed.practitionerId}` }, status: "accepted" },
      { actor: { reference: `Location/${seed.locationId}` }, status: "accepted" },
    ],
  };
}

export async function fhirJson<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, { ...init, headers: { "content-type": "application/fhir+json", ...(init?.headers ?? {}) } });
  if (!res.ok) throw new Error(`${init?.method ?? "GET"} ${url} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}

/** Every process-event job of the intake queue (any state), by id. */
export async function intakeEvents(queue: Queue, name = "process-event") {
  const jobs = await queue.getJobs(["waiting", "delayed", "prioritized", "active", "completed", "failed"]);
  return jobs.filter((j) => j.name === name).sort((a, b) => (a.id ?? "").localeCompare(b.id ?? ""));
}

/** True once nothing is waiting, delayed or running in the queue. */
export async function drained(queue: Queue): Promise<boolean> {
  const c = await queue.getJobCounts("waiting", "delayed", "prioritized", "active");
  return Object.values(c).every((n) => n === 0);
}
