import { createHmac } from "node:crypto";
import type { Appointment } from "fhir/r4";
import type { Queue } from "bullmq";
import { describe, expect, it, onTestFinished } from "vitest";
import { startTestService } from "../../support/start-test-service.js";
import { newRedisPrefix, testRedisUrl } from "../../support/redis-prefix.js";
import { waitFor } from "../../support/wait-for.js";
import { bookedAppointment, fhirJson, intakeEvents } from "./support.js";

const secret = "medplum-hmac-secret-0123456789";

/** Nothing waiting or running; delayed jobs (reminders days out) may stay. */
async function idle(queue: Queue): Promise<boolean> {
  const c = await queue.getJobCounts("waiting", "active", "prioritized");
  return Object.values(c).every((n) => n === 0);
}

describe("a push source whose notifications were lost while fhir-notify was down", () => {
  it("finds the changes made meanwhile when it starts, sends each once, and the late notification adds nothing", { timeout: 30_000 }, async () => {
    // The hospital's FHIR server: a sandbox that stays up while fhir-notify restarts. Its role is
    // api, so it only serves FHIR here; its own demo source's events are never processed.
    const ehr = await startTestService({ role: "api" });
    const seed = ehr.sandboxSeed!;
    const base = ehr.fhirBaseUrl;
    // fhir-notify's Redis keeps its state across the restart.
    const { prefix, cleanup } = newRedisPrefix();
    onTestFinished(cleanup);
    const config = {
      redis: { url: testRedisUrl, prefix },
      fhir: { baseUrl: base },
      // One patient gets all three confirmations: no 6 s pacing between them in this test.
      delivery: { rateLimits: { perRecipientSeconds: 0.01 } },
      sources: { medplum: { auth: { type: "hmac", secret }, resourceTypes: ["Appointment"] } },
      mapping: {
        locations: { [`Location/${seed.locationId}`]: { label: "Riverside Clinic", timeZone: "America/New_York" } },
        organization: { reference: `Organization/${seed.organizationId}`, displayName: "Riverside Health", phone: "+1 555-555-0100" },
      },
    };
    /** Medplum's rest-hook delivery (reference §4.1): POST of the bare resource, HMAC of the raw body. */
    const deliver = (url: string, a: Appointment, interaction: "create" | "update") => {
      const body = JSON.stringify(a);
      return fetch(`${url}/hooks/fhir/medplum`, {
        method: "POST",
        headers: { "content-type": "application/fhir+json", "x-medplum-interaction": interaction, "x-medplum-subscription": "0b6a3f1e-6c1d-4d0a-9a51-2f3e7c9d1a44", "x-signature": createHmac("sha256", secret).update(body).digest("hex") },
        body,
      });
    };
    const create = () => fhirJson<Appointment>(`${base}/Appointment`, { method: "POST", body: JSON.stringify(bookedAppointment(seed)) });

    // Running: one appointment notified and confirmed; its lastUpdated is now the source's mark.
    const first = await startTestService({ config });
    const seenBefore = await create();
    expect((await deliver(first.url, seenBefore, "create")).status).toBe(202);
    await waitFor("the first confirmation", () => first.outbox!.list()[0]);
    await first.stop();

    // Down: two bookings whose notifications Medplum gave up on after its retries.
    const whileDown = [await create(), await create()];

    const second = await startTestService({ config });
    const intake = second.queues.byName.intake;
    await waitFor("both missed confirmations", () => second.outbox!.list().length === 2 && idle(intake));
    const catchUps = await intakeEvents(intake, "catch-up");
    expect(catchUps.map((j) => (j.data as { reason: string }).reason)).toEqual(["start"]);
    const found = (await intakeEvents(intake)).map((j) => (j.data as { id: string }).id);
    for (const a of whileDown) expect(found).toContain(a.id);

    // Medplum's late delivery of one of them (a $resend, or a retry that got through after all).
    expect((await deliver(second.url, whileDown[0]!, "create")).status).toBe(202);
    await waitFor("intake idle", () => idle(intake));
    await waitFor("delivery idle", () => idle(second.queues.byName.delivery));
    // One message per booking: the two missed ones here, and the one already seen is not sent again.
    expect(second.outbox!.list()).toHaveLength(2);
    expect((await intakeEvents(intake)).filter((j) => (j.data as { id: string }).id === whileDown[0]!.id)).toHaveLength(1);
  });
});
