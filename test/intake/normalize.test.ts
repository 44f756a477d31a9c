import { readFileSync } from "node:fs";
import { fc, test as fcTest } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/shared/app-error.js";
import { normalizeNotification, type NotificationInput } from "../../src/intake/normalize.js";
import { sourceConfigSchema, type SourceConfig } from "../../src/intake/source.config.js";

const receivedAt = "2025-03-04T09:15:03.000Z";
const cfg = sourceConfigSchema.parse({ auth: { type: "none" } });

function fixture(name: string): Uint8Array {
  return readFileSync(new URL(`../fixtures/notifications/${name}`, import.meta.url));
}

function input(raw: Uint8Array | string, over: Partial<Omit<NotificationInput, "header">> & { headers?: Record<string, string> } = {}): NotificationInput {
  const headers = Object.fromEntries(Object.entries(over.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const { headers: _h, ...rest } = over;
  return {
    source: "ehr-main",
    sourceConfig: cfg,
    method: "POST",
    contentType: "application/fhir+json",
    receivedAt,
    raw: typeof raw === "string" ? new TextEncoder().encode(raw) : raw,
    header: (name) => headers[name.toLowerCase()],
    ...rest,
  };
}

function failure(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error("expected an AppError");
}

describe("classic R4 rest-hook and HAPI", () => {
  it("treats an empty POST without a content type as a ping that asks for a catch-up search", () => {
    expect(normalizeNotification(input("", { contentType: undefined }))).toEqual({ kind: "ping" });
  });

  it("turns a HAPI PUT of an Appointment into an update hint carrying the version", () => {
    const n = normalizeNotification(
      input(fixture("hapi-put-appointment.json"), { method: "PUT", pathType: "Appointment", pathId: "apt-7781", contentType: "application/fhir+json;charset=UTF-8" }),
    );
    expect(n).toEqual({
      kind: "events",
      ignored: 0,
      events: [{ source: "ehr-main", resourceType: "Appointment", id: "apt-7781", versionId: "3", interaction: "update", receivedAt, shape: "rest-hook-resource" }],
    });
  });

  it("turns a HAPI DELETE without a body into a delete hint taken from the path", () => {
    const n = normalizeNotification(input("", { method: "DELETE", pathType: "Appointment", pathId: "apt-7781", contentType: undefined }));
    expect(n).toMatchObject({ kind: "events", events: [{ resourceType: "Appointment", id: "apt-7781", interaction: "delete", shape: "rest-hook-delete" }] });
  });

  it("takes type and id from the path when a PUT arrives without a body", () => {
    const n = normalizeNotification(input("", { method: "PUT", pathType: "MedicationDispense", pathId: "md-5521", contentType: undefined }));
    expect(n).toMatchObject({ kind: "events", events: [{ resourceType: "MedicationDispense", id: "md-5521", interaction: "update" }] });
  });

  it("accepts a bare resource POSTed to the appended path with an unknown interaction", () => {
    const n = normalizeNotification(input(fixture("hapi-put-appointment.json"), { pathType: "Appointment", pathId: "apt-7781", contentType: "application/json" }));
    expect(n).toMatchObject({ kind: "events", events: [{ id: "apt-7781", interaction: "unknown" }] });
  });

  it("counts an authentic notification about a type the source does not handle instead of failing it", () => {
    const n = normalizeNotification(input(fixture("observation.json"), { method: "PUT", pathType: "Observation", pathId: "obs-1" }));
    expect(n).toEqual({ kind: "events", events: [], ignored: 1 });
  });

  it("rejects an unhandled type when the source is configured to reject them", () => {
    const strict: SourceConfig = { ...cfg, unhandledTypes: "reject" };
    const err = failure(() => normalizeNotification(input(fixture("observation.json"), { sourceConfig: strict })));
    expect(err.status).toBe(400);
    expect(err.expression).toBe("resourceType");
  });
});

describe("Medplum", () => {
  it("reads the interaction and the version from a Medplum update", () => {
    const n = normalizeNotification(
      input(fixture("medplum-update-appointment.json"), {
        headers: { "X-Medplum-Subscription": "0b6a3f1e-6c1d-4d0a-9a51-2f3e7c9d1a44", "X-Medplum-Interaction": "update" },
      }),
    );
    expect(n).toMatchObject({
      kind: "events",
      events: [{ resourceType: "Appointment", id: "apt-7781", versionId: "c2f1d9a4-5b7e-4c1d-9f3a-7e8b6a5d4c21", interaction: "update", shape: "medplum" }],
    });
  });

  it("turns the literal {} with delete headers into a delete hint named by X-Medplum-Deleted-Resource", () => {
    const n = normalizeNotification(
      input(fixture("medplum-delete.json"), { headers: { "X-Medplum-Interaction": "delete", "X-Medplum-Deleted-Resource": "Appointment/apt-7781" } }),
    );
    expect(n).toEqual({
      kind: "events",
      ignored: 0,
      events: [{ source: "ehr-main", resourceType: "Appointment", id: "apt-7781", interaction: "delete", receivedAt, shape: "medplum" }],
    });
  });

  it("treats {} without a delete header as a ping", () => {
    expect(normalizeNotification(input("{}"))).toEqual({ kind: "ping" });
  });

  it("rejects a Medplum delete whose deleted-resource header is missing", () => {
    const err = failure(() => normalizeNotification(input("{}", { headers: { "X-Medplum-Interaction": "delete" } })));
    expect(err.code).toBe("required");
  });
});

describe("topic-based notifications", () => {
  it("recognises an R4 backport handshake and normalises the subscription reference", () => {
    expect(normalizeNotification(input(fixture("r4-backport-handshake.json")))).toEqual({
      kind: "handshake",
      topic: {
        subscriptionRef: "Subscription/fn-appt",
        status: "requested",
        type: "handshake",
        eventsSinceStart: "0",
        eventNumbers: [],
        topicUrl: "https://ehr.example.org/fhir/SubscriptionTopic/appointment-changed",
      },
    });
  });

  it("recognises an R4 backport heartbeat with its running event count", () => {
    expect(normalizeNotification(input(fixture("r4-backport-heartbeat.json")))).toMatchObject({
      kind: "heartbeat",
      topic: { type: "heartbeat", status: "active", eventsSinceStart: "318" },
    });
  });

  it("turns an id-only R4 backport event into one hint per focus with its event number", () => {
    const n = normalizeNotification(input(fixture("r4-backport-event-id-only.json")));
    expect(n).toEqual({
      kind: "events",
      ignored: 0,
      topic: expect.objectContaining({ subscriptionRef: "Subscription/fn-appt", eventNumbers: ["319"], eventsSinceStart: "319" }),
      events: [{ source: "ehr-main", resourceType: "Appointment", id: "apt-7781", interaction: "unknown", eventNumber: "319", receivedAt, shape: "topic-r4" }],
    });
  });

  it("takes the version from the entry of a full-resource R4 backport event", () => {
    const n = normalizeNotification(input(fixture("r4-backport-event-full-resource.json")));
    expect(n).toMatchObject({ kind: "events", events: [{ resourceType: "Appointment", id: "apt-7781", versionId: "3", eventNumber: "319" }] });
  });

  it("falls back to entry fullUrls, including _history versions, when the events have no focus", () => {
    const n = normalizeNotification(input(fixture("r4-backport-event-entries-only.json")));
    expect(n).toMatchObject({ kind: "events", events: [{ resourceType: "Appointment", id: "apt-7790", versionId: "2", eventNumber: "322" }] });
  });

  it("turns an empty-payload event into a ping that still carries the topic for gap tracking", () => {
    expect(normalizeNotification(input(fixture("r4-backport-event-empty.json")))).toEqual({
      kind: "ping",
      topic: { subscriptionRef: "Subscription/fn-appt", status: "active", type: "event-notification", eventsSinceStart: "321", eventNumbers: ["321"] },
    });
  });

  it("reads an R4B history Bundle whose first entry is a SubscriptionStatus", () => {
    const n = normalizeNotification(input(fixture("r4b-event-id-only.json")));
    expect(n).toMatchObject({ kind: "events", topic: { eventNumbers: ["319"] }, events: [{ id: "apt-7781", shape: "topic-r4b" }] });
  });

  it("reads an R5 notification whose counters are JSON numbers and resolves a relative focus", () => {
    const n = normalizeNotification(input(fixture("r5-event-numeric-counters.json")));
    expect(n).toEqual({
      kind: "events",
      ignored: 0,
      topic: {
        subscriptionRef: "Subscription/fn-pharmacy",
        status: "active",
        type: "event-notification",
        eventsSinceStart: "42",
        eventNumbers: ["42"],
        topicUrl: "https://ehr.example.org/fhir/SubscriptionTopic/dispense-status",
      },
      events: [{ source: "ehr-main", resourceType: "MedicationDispense", id: "md-5521", versionId: "4", eventNumber: "42", interaction: "unknown", receivedAt, shape: "topic-r5" }],
    });
  });

  it("recognises an R5 heartbeat", () => {
    expect(normalizeNotification(input(fixture("r5-heartbeat.json")))).toMatchObject({ kind: "heartbeat", topic: { subscriptionRef: "Subscription/fn-pharmacy", eventsSinceStart: "42" } });
  });

  it("rejects a HAPI transaction Bundle with 400", () => {
    const err = failure(() => normalizeNotification(input(fixture("hapi-transaction-bundle.json"))));
    expect(err.status).toBe(400);
    expect(err.expression).toBe("Bundle.type");
  });

  it("rejects a history Bundle whose first entry is neither Parameters nor SubscriptionStatus", () => {
    const err = failure(() => normalizeNotification(input(fixture("history-bundle-wrong-first-entry.json"))));
    expect(err.status).toBe(400);
    expect(err.expression).toBe("Bundle.entry[0].resource");
  });

  it("rejects a notification whose subscription parameter is missing, naming the parameter", () => {
    const bundle = JSON.parse(new TextDecoder().decode(fixture("r4-backport-heartbeat.json")));
    bundle.entry[0].resource.parameter = bundle.entry[0].resource.parameter.filter((p: { name: string }) => p.name !== "subscription");
    const err = failure(() => normalizeNotification(input(JSON.stringify(bundle))));
    expect(err.code).toBe("required");
    expect(err.expression).toContain("subscription");
  });
});

describe("cloud event feeds", () => {
  it("turns an Event Grid batch into hints with string versions and counts the Patient event as ignored", () => {
    const n = normalizeNotification(input(fixture("event-grid-batch.json"), { contentType: "application/json; charset=utf-8" }));
    expect(n).toEqual({
      kind: "events",
      ignored: 1,
      events: [
        { source: "ehr-main", resourceType: "Appointment", id: "apt-7781", versionId: "3", interaction: "update", receivedAt, shape: "azure-event-grid" },
        { source: "ehr-main", resourceType: "DiagnosticReport", id: "dr-3301", versionId: "1", interaction: "create", receivedAt, shape: "azure-event-grid" },
        { source: "ehr-main", resourceType: "MedicationRequest", id: "mr-8812", versionId: "5", interaction: "delete", receivedAt, shape: "azure-event-grid" },
      ],
    });
  });

  it("answers the Event Grid subscription validation with the validation code", () => {
    expect(normalizeNotification(input(fixture("event-grid-validation.json"), { contentType: "application/json" }))).toEqual({
      kind: "validation",
      body: { validationResponse: "512d38b6-c7b8-40c8-89fe-f46f9e9622b6" },
    });
  });

  it("decodes a Pub/Sub push resource name and dedupes on the message id", () => {
    const n = normalizeNotification(input(fixture("pubsub-push-resource-name.json"), { contentType: "application/json" }));
    expect(n).toEqual({
      kind: "events",
      ignored: 0,
      dedupeKey: "13527489012345678",
      events: [{ source: "ehr-main", resourceType: "Appointment", id: "apt-7781", interaction: "update", receivedAt, shape: "google-pubsub" }],
    });
  });

  it("maps a Pub/Sub DeleteResource action to a delete hint", () => {
    const n = normalizeNotification(input(fixture("pubsub-push-delete.json"), { contentType: "application/json" }));
    expect(n).toMatchObject({ kind: "events", events: [{ resourceType: "MedicationDispense", id: "md-5521", interaction: "delete" }] });
  });
});

describe("bad input", () => {
  it("answers malformed JSON with 400 structure and without echoing the body", () => {
    const err = failure(() => normalizeNotification(input('{"resourceType":"Appointment","id":"apt-7781","comment":"Synthetic Patient One')));
    expect(err.code).toBe("structure");
    expect(err.status).toBe(400);
    expect(err.message).not.toContain("Synthetic");
  });

  it("rejects JSON that is not a FHIR resource without quoting its fields", () => {
    const err = failure(() => normalizeNotification(input(fixture("not-a-fhir-resource.json"))));
    expect(err.code).toBe("structure");
    expect(err.message).not.toContain("Synthetic");
  });

  it.each(['"just a string"', "42", "[1, 2]", "null"])("rejects the JSON value %s as not a notification", (body) => {
    expect(failure(() => normalizeNotification(input(body))).status).toBe(400);
  });

  it("rejects a resourceType that FHIR does not define", () => {
    const err = failure(() => normalizeNotification(input(fixture("unknown-resource-type.json"))));
    expect(err.code).toBe("invalid");
    expect(err.expression).toBe("resourceType");
  });

  it("rejects a body whose id disagrees with the URL, pointing at Appointment.id", () => {
    const err = failure(() => normalizeNotification(input(fixture("hapi-put-appointment.json"), { method: "PUT", pathType: "Appointment", pathId: "apt-9999" })));
    expect(err.code).toBe("invalid");
    expect(err.status).toBe(400);
    expect(err.expression).toBe("Appointment.id");
  });

  it("rejects a body whose type disagrees with the URL", () => {
    const err = failure(() => normalizeNotification(input(fixture("hapi-put-appointment.json"), { method: "PUT", pathType: "MedicationDispense", pathId: "apt-7781" })));
    expect(err.status).toBe(400);
  });

  it("rejects a resource without an id", () => {
    const err = failure(() => normalizeNotification(input(fixture("appointment-without-id.json"), { method: "PUT" })));
    expect(err.code).toBe("required");
    expect(err.expression).toBe("Appointment.id");
  });

  it("rejects an id that is not a FHIR id before it can reach a job id", () => {
    const err = failure(() => normalizeNotification(input('{"resourceType":"Appointment","id":"apt:7781/../x"}')));
    expect(err.expression).toBe("Appointment.id");
  });

  it("answers application/fhir+xml with 415 not-supported", () => {
    const err = failure(() => normalizeNotification(input('<Appointment xmlns="http://hl7.org/fhir"/>', { contentType: "application/fhir+xml" })));
    expect(err.code).toBe("not-supported");
    expect(err.status).toBe(415);
  });

  it("requires a content type when there is a body", () => {
    expect(failure(() => normalizeNotification(input(fixture("hapi-put-appointment.json"), { contentType: undefined }))).code).toBe("not-supported");
  });

  it("rejects a DELETE that does not name a resource in the path", () => {
    expect(failure(() => normalizeNotification(input("", { method: "DELETE", contentType: undefined }))).status).toBe(400);
  });

  it("rejects an Event Grid FHIR event without a resource id", () => {
    const batch = JSON.parse(new TextDecoder().decode(fixture("event-grid-batch.json")));
    delete batch[0].data.resourceFhirId;
    const err = failure(() => normalizeNotification(input(JSON.stringify(batch), { contentType: "application/json" })));
    expect(err.code).toBe("structure");
    expect(err.expression).toBe("[0].data.resourceFhirId");
  });

  it("rejects a Pub/Sub message whose data is not a FHIR store resource name", () => {
    const push = { message: { data: Buffer.from("hello").toString("base64"), messageId: "1" }, subscription: "projects/p/subscriptions/s" };
    expect(failure(() => normalizeNotification(input(JSON.stringify(push), { contentType: "application/json" }))).expression).toBe("message.data");
  });
});

describe("any input", () => {
  // Keys and values that steer generated bodies into every parser branch, plus one value that stands for PHI.
  const phi = "Jane-Doe-1957-03-12";
  const keys = fc.constantFrom(
    "resourceType", "id", "type", "entry", "resource", "parameter", "name", "part", "valueString", "valueCode", "valueReference",
    "reference", "focus", "eventNumber", "notificationEvent", "subscription", "message", "data", "eventType", "meta", "versionId", "fullUrl",
  );
  const values = [
    fc.constantFrom("Bundle", "history", "subscription-notification", "Parameters", "SubscriptionStatus", "Appointment", "subscription", "type"),
    fc.constantFrom("event-notification", "handshake", "notification-event", "focus", "event-number", "Appointment/apt-1", "Microsoft.HealthcareApis.FhirResourceCreated"),
    fc.constant(phi),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
  ];
  const anything = fc.anything({ key: keys, values, maxDepth: 5, maxKeys: 6 });
  const ref = fc.constantFrom("urn:uuid:0f4e6c2a", "https://ehr.example.org/fhir/Appointment/apt-1", "Appointment/apt-1/_history/2", "Subscription/fn-appt", "Foo/1", "");
  const param0 = fc.record({ name: fc.constantFrom("event-number", "focus"), valueString: fc.oneof(anything, fc.constantFrom("7", "-1", "1e3")), valueReference: fc.record({ reference: ref }) }, { requiredKeys: ["name"] });
  const param = fc.record(
    { name: fc.constantFrom("subscription", "type", "status", "notification-event", "event-number", "focus", "events-since-subscription-start"), valueString: anything, valueCode: anything, valueReference: fc.oneof(anything, fc.record({ reference: ref })), part: fc.array(fc.oneof(anything, param0)) },
    { requiredKeys: ["name"] },
  );
  const statusResource = fc.oneof(
    fc.record({ resourceType: fc.constant("Parameters"), parameter: fc.array(param, { maxLength: 6 }) }),
    fc.record({ resourceType: fc.constant("SubscriptionStatus"), type: anything, subscription: anything, notificationEvent: anything, eventsSinceSubscriptionStart: anything }, { requiredKeys: ["resourceType"] }),
  );
  const bundle = fc.record({
    resourceType: fc.constant("Bundle"),
    type: fc.constantFrom("history", "subscription-notification", "transaction", "searchset"),
    entry: fc.tuple(
      fc.record({ fullUrl: ref, resource: statusResource }),
      fc.array(fc.record({ fullUrl: ref, resource: fc.oneof(anything, fc.record({ resourceType: fc.constant("Appointment"), id: anything, meta: anything })), request: fc.record({ url: ref }) }, { requiredKeys: [] }), { maxLength: 3 }),
    ).map(([first, rest]) => [first, ...rest]),
  });
  const body = fc.oneof(anything, bundle, fc.array(fc.record({ eventType: anything, id: anything, data: anything }), { maxLength: 3 }));

  fcTest.prop([body, fc.constantFrom("POST", "PUT")])("answers with a notification or an AppError that does not quote the body", (value, method) => {
    const raw = JSON.stringify(value) ?? "null";
    try {
      normalizeNotification(input(raw, { method }));
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      expect(err.status).toBeLessThan(500);
      expect(`${err.message} ${err.expression ?? ""}`).not.toContain(phi);
    }
  });
});
