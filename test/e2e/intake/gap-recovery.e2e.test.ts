import { readFileSync } from "node:fs";
import type { Appointment, Bundle, FhirResource, Parameters } from "fhir/r4";
import { describe, expect, it } from "vitest";
import { createFhirClient } from "../../../src/fhir/fhir.client.js";
import { fhirClientConfigSchema } from "../../../src/fhir/fhir.config.js";
import { FhirError, type FhirPort } from "../../../src/fhir/fhir.port.js";
import { createLogger } from "../../../src/shared/logger.js";
import { startTestService } from "../../support/start-test-service.js";
import { waitFor } from "../../support/wait-for.js";
import { bookedAppointment, fhirJson, intakeEvents } from "./support.js";

const key = "topic-key-0123456789abcdef";
const headers = { "content-type": "application/fhir+json", "x-fhir-notify-key": key };

/** The R4 backport id-only fixture (reference §5.5), renumbered and pointed at `focus`. */
function topicEvent(eventNumber: number, focus: string): Bundle {
  const bundle = JSON.parse(readFileSync(new URL("../../fixtures/notifications/r4-backport-event-id-only.json", import.meta.url), "utf8")) as Bundle;
  const status = bundle.entry![0]!.resource as Parameters;
  for (const p of status.parameter ?? []) {
    if (p.name === "events-since-subscription-start") p.valueString = String(eventNumber);
    if (p.name !== "notification-event") continue;
    for (const part of p.part ?? []) {
      if (part.name === "event-number") part.valueString = String(eventNumber);
      if (part.name === "focus") part.valueReference = { reference: focus };
    }
  }
  bundle.entry = [bundle.entry![0]!, { fullUrl: focus, request: { method: "PUT", url: focus.replace(/^.*\/(Appointment\/[^/]+)$/, "$1") }, response: { status: "200" } }];
  return bundle;
}

/**
 * The sandbox FHIR server (reached over HTTP) plus what it lacks: `$events` on the topic
 * subscription. `eventsAnswer` decides what the operation returns; undefined → 404, as from a
 * server that does not implement it.
 */
function sandboxWithEvents(eventsAnswer: (url: URL) => Bundle | undefined) {
  let real: FhirPort | undefined;
  const calls: URL[] = [];
  const port = (): FhirPort => {
    if (real === undefined) throw new Error("sandbox not started yet");
    return real;
  };
  const fhir: FhirPort = {
    get baseUrl() {
      return port().baseUrl;
    },
    read: <T extends FhirResource>(type: T["resourceType"], id: string) => port().read<T>(type, id),
    vread: <T extends FhirResource>(type: T["resourceType"], id: string, versionId: string) => port().vread<T>(type, id, versionId),
    search: (type, params) => port().search(type, params),
    create: (resource, options) => port().create(resource, options),
    update: (resource, options) => port().update(resource, options),
    fetchPage(url) {
      const parsed = new URL(url);
      if (!parsed.pathname.endsWith("/$events")) return port().fetchPage(url);
      calls.push(parsed);
      const answer = eventsAnswer(parsed);
      return answer !== undefined ? Promise.resolve(answer) : Promise.reject(new FhirError("FHIR fetch-page: HTTP 404", 404, false));
    },
  };
  return {
    fhir,
    calls,
    connect(baseUrl: string) {
      real = createFhirClient(fhirClientConfigSchema.parse({ baseUrl, retries: 0 }), createLogger("silent"));
    },
  };
}

async function startWithTopicSource(recoverWith: "$events" | "search", eventsAnswer: (url: URL) => Bundle | undefined) {
  const sandbox = sandboxWithEvents(eventsAnswer);
  const service = await startTestService({
    fhir: sandbox.fhir,
    config: {
      sources: {
        topic: {
          auth: { type: "header", name: "x-fhir-notify-key", value: key },
          resourceTypes: ["Appointment"],
          recoverWith,
          gapGraceSeconds: 0,
          subscription: { style: "backport-r4", payload: "id-only", topicUrl: "https://ehr.example.org/fhir/SubscriptionTopic/appointment-changed" },
        },
      },
    },
  });
  sandbox.connect(service.fhirBaseUrl);
  const book = (hours: number) => fhirJson<Appointment>(`${service.fhirBaseUrl}/Appointment`, { method: "POST", body: JSON.stringify(bookedAppointment(service.sandboxSeed!, hours)) });
  const notify = (n: number, a: Appointment) =>
    service.app.request("/hooks/fhir/topic", { method: "POST", headers, body: JSON.stringify(topicEvent(n, `https://ehr.example.org/fhir/Appointment/${a.id}`)) });
  return { service, sandbox, book, notify };
}

describe("a jump in topic event numbers", () => {
  it("asks $events for exactly the missing numbers and processes what it returns", async () => {
    const lost: { appointment?: Appointment } = {};
    const { service, sandbox, book, notify } = await startWithTopicSource("$events", (url) =>
      url.searchParams.get("eventsSinceNumber") === "2" && lost.appointment !== undefined ? topicEvent(2, `${service.fhirBaseUrl}/Appointment/${lost.appointment.id}`) : undefined,
    );
    const [a, b, c] = [await book(72), await book(73), await book(74)];
    lost.appointment = b;

    expect((await notify(1, a)).status).toBe(202);
    // Event 2 (about b) is lost on the way; 3 arrives.
    expect((await notify(3, c)).status).toBe(202);

    const intake = service.queues.byName.intake;
    const recovered = await waitFor("the missed event recovered and processed", async () => {
      const job = (await intakeEvents(intake)).find((j) => (j.data as { id: string }).id === b.id);
      return job?.finishedOn !== undefined ? job : undefined;
    });
    expect(recovered.data).toMatchObject({ source: "topic", resourceType: "Appointment", eventNumber: "2", shape: "topic-r4" });
    expect(sandbox.calls.map((u) => `${u.pathname}?${u.searchParams.toString()}`)).toEqual([
      `${new URL(service.fhirBaseUrl).pathname}/Subscription/fn-appt/$events?eventsSinceNumber=2&eventsUntilNumber=2`,
    ]);
    const [gap] = await intakeEvents(intake, "catch-up");
    expect(gap?.data).toMatchObject({ reason: "gap", subscriptionRef: "Subscription/fn-appt", missing: [{ from: 2, to: 2 }] });
    expect(service.logs.text()).toContain('"event":"topic-gap"');
    for (const appointment of [a, b, c]) {
      await waitFor(`a confirmation decided for ${appointment.id}`, async () => {
        const jobs = await service.queues.byName.delivery.getJobs(["waiting", "delayed", "active", "completed", "failed"]);
        return jobs.some((j) => j.id?.includes(`_appointment-booked_Appointment_${appointment.id}_`));
      });
    }
  });

  it("falls back to a catch-up search when the server has no $events", async () => {
    const { service, sandbox, book, notify } = await startWithTopicSource("$events", () => undefined);
    const [a, b, c] = [await book(72), await book(73), await book(74)];
    await notify(10, a);
    await notify(12, c);

    const intake = service.queues.byName.intake;
    await waitFor("the search to find the missed appointment", async () => (await intake.getJob(`intake_topic_Appointment_${b.id}_v${b.meta?.versionId}`))?.finishedOn !== undefined);
    expect(sandbox.calls).toHaveLength(1);
    expect((await intake.getJob(`intake_topic_Appointment_${b.id}_v${b.meta?.versionId}`))?.data).toMatchObject({ shape: "poll" });
  });

  it("searches without trying $events when the source recovers by search", async () => {
    const { service, sandbox, book, notify } = await startWithTopicSource("search", () => undefined);
    const [a, b, c] = [await book(72), await book(73), await book(74)];
    await notify(1, a);
    await notify(3, c);
    await waitFor("the search to find the missed appointment", async () => (await service.queues.byName.intake.getJob(`intake_topic_Appointment_${b.id}_v${b.meta?.versionId}`))?.finishedOn !== undefined);
    expect(sandbox.calls).toEqual([]);
  });
});
