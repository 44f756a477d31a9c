import type { Appointment, Bundle, Communication } from "fhir/r4";
import { describe, expect, it } from "vitest";
import { createLedger } from "../../../src/delivery/ledger.js";
import { fhirServerId } from "../../../src/shared/ids.js";
import { startTestService } from "../../support/start-test-service.js";
import { waitFor } from "../../support/wait-for.js";
import { bookedAppointment, drained, fhirJson, intakeEvents } from "./support.js";

const restHookToken = "rest-hook-token-0123456789";
const topicToken = "topic-token-0123456789abcd";

/** An R4 backport id-only event-notification (reference §5.5) about one resource on `base`. */
function idOnlyEvent(base: string, ref: string, eventNumber: number): Bundle {
  return {
    resourceType: "Bundle",
    type: "history",
    timestamp: new Date().toISOString(),
    entry: [
      {
        fullUrl: "urn:uuid:6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
        resource: {
          resourceType: "Parameters",
          parameter: [
            { name: "subscription", valueReference: { reference: `${base}/Subscription/fn-topics` } },
            { name: "topic", valueCanonical: "http://hl7.org/SubscriptionTopic/appointment-changed" },
            { name: "status", valueCode: "active" },
            { name: "type", valueCode: "event-notification" },
            { name: "events-since-subscription-start", valueString: String(eventNumber) },
            { name: "notification-event", part: [{ name: "event-number", valueString: String(eventNumber) }, { name: "focus", valueReference: { reference: `${base}/${ref}` } }] },
          ],
        },
        request: { method: "GET", url: `${base}/Subscription/fn-topics/$status` },
        response: { status: "200" },
      },
      { fullUrl: `${base}/${ref}`, request: { method: "PUT", url: ref }, response: { status: "200" } },
    ],
  };
}

describe("one FHIR server notifying through two channels (a migration from rest-hook to topics)", () => {
  it("gives one message and one Communication per intended message when both channels report the same version", async () => {
    const sources = {
      "ehr-hook": { auth: { type: "bearer", token: restHookToken }, resourceTypes: ["Appointment"] },
      "ehr-topics": { auth: { type: "bearer", token: topicToken }, resourceTypes: ["Appointment"] },
    };
    const service = await startTestService({ config: { sources } });
    const base = service.fhirBaseUrl;
    const intake = service.queues.byName.intake;
    const appointment = await fhirJson<Appointment>(`${base}/Appointment`, { method: "POST", body: JSON.stringify(bookedAppointment(service.sandboxSeed!)) });
    const ref = `Appointment/${appointment.id}`;

    // The same version, once as a classic rest-hook PUT and once as a topic notification.
    const hook = await fetch(`${service.url}/hooks/fhir/ehr-hook/${ref}`, {
      method: "PUT",
      headers: { "content-type": "application/fhir+json", authorization: `Bearer ${restHookToken}` },
      body: JSON.stringify(appointment),
    });
    const topic = await fetch(`${service.url}/hooks/fhir/ehr-topics`, {
      method: "POST",
      headers: { "content-type": "application/fhir+json", authorization: `Bearer ${topicToken}` },
      body: JSON.stringify(idOnlyEvent(base, ref, 1)),
    });
    expect([hook.status, topic.status]).toEqual([202, 202]);

    await waitFor("both channels' events processed", async () => {
      const events = (await intakeEvents(intake)).filter((j) => (j.data as { id: string }).id === appointment.id);
      return events.length === 2 && events.every((j) => j.finishedOn !== undefined) && (await drained(intake));
    });
    await waitFor("the confirmation in the outbox", () => service.outbox!.list()[0]);
    const communications = await waitFor("the confirmation's Communication completed", async () => {
      const bundle = await fhirJson<Bundle>(`${base}/Communication?_count=100`);
      const about = (bundle.entry ?? []).map((e) => e.resource as Communication).filter((c) => c.about?.some((a) => a.reference?.startsWith(ref)));
      return about.some((c) => c.status === "completed") && (await drained(service.queues.byName.audit)) ? about : undefined;
    });

    expect(service.outbox!.list()).toHaveLength(1);
    // The confirmation (sent) and the reminder (waiting for its time): one Communication each.
    const keys = communications.map((c) => c.identifier?.find((i) => i.system === service.config.audit.identifierSystem)?.value);
    expect(keys).toHaveLength(2);
    expect(new Set(keys).size).toBe(2);
    const ledger = createLedger(service.redis, service.config.redis.prefix);
    const reminders = await ledger.pending([fhirServerId(base), "ehr-hook", "ehr-topics"], "appointment-reminder", ref);
    expect(reminders).toHaveLength(1);
    expect(reminders[0]).toContain(fhirServerId(base));
  });
});
