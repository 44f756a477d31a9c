import { readFileSync } from "node:fs";
import type { Bundle, Parameters } from "fhir/r4";
import { describe, expect, it } from "vitest";
import { FhirError } from "../../src/fhir/fhir.port.js";
import type { Poller } from "../../src/intake/poll.js";
import { createRecovery } from "../../src/intake/recover.js";
import type { ResourceEvent } from "../../src/intake/resource-event.js";
import { sourceConfigSchema } from "../../src/intake/source.config.js";
import type { TopicInfo } from "../../src/intake/topic-notification.js";
import { createLogger } from "../../src/shared/logger.js";

const receivedAt = "2025-03-04T09:16:00.000Z";
const topic: TopicInfo = { subscriptionRef: "Subscription/fn-appt", type: "event-notification", eventsSinceStart: "319", eventNumbers: ["319"] };
const viaEvents = sourceConfigSchema.parse({ auth: { type: "none" }, recoverWith: "$events" });
const viaSearch = sourceConfigSchema.parse({ auth: { type: "none" }, recoverWith: "search" });
const polled: ResourceEvent[] = [{ source: "ehr", resourceType: "Appointment", id: "apt-1", interaction: "unknown", receivedAt, shape: "poll" }];

/** The $events answer for event 318: the id-only fixture, renumbered, as a query-event Bundle. */
function eventsBundle(eventNumber: string): Bundle {
  const bundle = JSON.parse(readFileSync(new URL("../fixtures/notifications/r4-backport-event-id-only.json", import.meta.url), "utf8")) as Bundle;
  const status = bundle.entry?.[0]?.resource as Parameters;
  for (const p of status.parameter ?? []) {
    if (p.name === "type") p.valueCode = "query-event";
    if (p.name === "notification-event" && p.part?.[0]) p.part[0].valueString = eventNumber;
  }
  return bundle;
}

function setup(fetchBundle: (url: string) => Promise<Bundle>) {
  const fetched: string[] = [];
  const polls: string[] = [];
  const poller: Poller = {
    pollOnce: (source) => {
      polls.push(source);
      return Promise.resolve(polled);
    },
  };
  const recovery = createRecovery({
    baseUrl: "https://ehr.example.org/fhir/",
    fetchBundle: (url) => {
      fetched.push(url);
      return fetchBundle(url);
    },
    poller,
    log: createLogger("silent"),
  });
  return { recovery, fetched, polls };
}

describe("gap recovery", () => {
  it("asks $events for exactly the missing range and returns its hints", async () => {
    const { recovery, fetched, polls } = setup(() => Promise.resolve(eventsBundle("318")));
    const events = await recovery.recover("ehr", viaEvents, topic, [{ from: 318, to: 318 }], receivedAt);
    expect(fetched).toEqual(["https://ehr.example.org/fhir/Subscription/fn-appt/$events?eventsSinceNumber=318&eventsUntilNumber=318"]);
    expect(events).toEqual([{ source: "ehr", resourceType: "Appointment", id: "apt-7781", interaction: "unknown", eventNumber: "318", receivedAt, shape: "topic-r4" }]);
    expect(polls).toEqual([]);
  });

  it("falls back to a catch-up search when the server does not support $events", async () => {
    const { recovery, polls } = setup(() => Promise.reject(new FhirError("not supported", 404, false)));
    expect(await recovery.recover("ehr", viaEvents, topic, [{ from: 318, to: 318 }], receivedAt)).toEqual(polled);
    expect(polls).toEqual(["ehr"]);
  });

  it("falls back to a search when the server no longer has the whole range", async () => {
    const { recovery, polls } = setup(() => Promise.resolve(eventsBundle("318")));
    expect(await recovery.recover("ehr", viaEvents, topic, [{ from: 317, to: 318 }], receivedAt)).toEqual(polled);
    expect(polls).toEqual(["ehr"]);
  });

  it("goes straight to the search when the source recovers with search", async () => {
    const { recovery, fetched, polls } = setup(() => Promise.resolve(eventsBundle("318")));
    await recovery.recover("ehr", viaSearch, topic, [{ from: 318, to: 318 }], receivedAt);
    expect(fetched).toEqual([]);
    expect(polls).toEqual(["ehr"]);
  });

  it("does nothing when nothing is missing", async () => {
    const { recovery, fetched, polls } = setup(() => Promise.resolve(eventsBundle("318")));
    expect(await recovery.recover("ehr", viaEvents, topic, [], receivedAt)).toEqual([]);
    expect([...fetched, ...polls]).toEqual([]);
  });
});
