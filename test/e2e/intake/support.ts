import type { Appointment } from "fhir/r4";
import type { Queue } from "bullmq";
import { bookedAppointment as booked, type SeedRefs } from "../../support/sandbox-booking.js";

export { fhirJson } from "../../support/sandbox-booking.js";

/** A booked general-practice appointment at the sandbox clinic, three days out unless said otherwise. */
export const bookedAppointment = (seed: SeedRefs, startsInHours = 72): Appointment =>
  booked(seed, { startsInHours, details: { serviceType: [{ text: "General practice" }] } });



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
