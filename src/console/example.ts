import type { Appointment } from "fhir/r4";
import type { SandboxSeed } from "../sandbox/seed.js";

/**
 * The preview's one-click example in sandbox mode: a booked appointment for the seeded (synthetic)
 * patient tomorrow at 15:00 UTC, the same one `npm start`'s banner shows how to book.
 */
export function sandboxExample(seed: SandboxSeed, now: Date): Appointment {
  const start = new Date(now.getTime() + 24 * 3600_000);
  start.setUTCHours(15, 0, 0, 0);
  return {
    resourceType: "Appointment",
    status: "booked",
    start: start.toISOString(),
    end: new Date(start.getTime() + 30 * 60_000).toISOString(),
    participant: [
      { actor: { reference: `Patient/${seed.patientId}` }, status: "accepted" },
      { actor: { reference: `Practitioner/${seed.practitionerId}` }, status: "accepted" },
      { actor: { reference: `Location/${seed.locationId}` }, status: "accepted" },
    ],
  };
}
