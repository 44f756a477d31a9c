import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { Redis } from "ioredis";
import { describe, expect, it, onTestFinished } from "vitest";
import { manualClock, type Clock } from "../../src/shared/clock.js";
import { startTestService } from "../support/start-test-service.js";
import { testRedisUrl } from "../support/redis-prefix.js";

/** One source per authentication style a FHIR server or event feed can use (reference §2.4, §4.2, §6). */
const secrets = {
  hapi: "hapi-token-0123456789abcdef",
  medplum: "medplum-hmac-secret-0123456789",
  topic: "topic-key-0123456789abcdef",
  azure: "azure-key-0123456789abcdef",
  gcp: "gcp-token-0123456789abcdef",
};
const sources = {
  hapi: { auth: { type: "bearer", token: secrets.hapi } },
  medplum: { auth: { type: "hmac", secret: secrets.medplum } },
  topic: { auth: { type: "header", name: "x-fhir-notify-key", value: secrets.topic } },
  azure: { auth: { type: "header", name: "x-eventgrid-key", value: secrets.azure } },
  gcp: { auth: { type: "bearer", token: secrets.gcp } },
};

const fixture = (name: string) => readFileSync(new URL(`../fixtures/notifications/${name}`, import.meta.url), "utf8");
const fhirJson = { "content-type": "application/fhir+json" };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const sign = (body: string) => createHmac("sha256", secrets.medplum).update(body).digest("hex");
const topicAuth = { ...fhirJson, "x-fhir-notify-key": secrets.topic };

// What a job may carry: references and ids only, never a resource body (BullMQ stores data in clear).
const allowedJobFields = ["source", "resourceType", "id", "versionId", "interaction", "eventNumber", "receivedAt", "shape"];

/** The intake role only: no workers, so every accepted event stays in the queue for inspection. */
async function intakeOnly(config: Record<string, unknown> = {}, clock?: Clock) {
  const service = await startTestService({ role: "api", config: { fhir: { baseUrl: "http://127.0.0.1:9/fhir" }, sources, ...config }, ...(clock !== undefined ? { clock } : {}) });
  // A connection of our own: a job that only lives in the service's memory would not be found here.
  const redis = new Redis(testRedisUrl, { maxRetriesPerRequest: 1 });
  onTestFinished(async () => {
    await redis.quit();
  });
  const prefix = service.config.redis.prefix;
  return {
    service,
    request: (path: string, init: RequestInit) => service.app.request(path, init),
    /** Job ids in Redis for the intake queue, by job name. */
    async jobs(name = "process-event"): Promise<string[]> {
      const all = await service.queues.byName.intake.getJobs(["waiting", "delayed", "prioritized", "active", "completed", "failed"]);
      const ids = all.filter((j) => j.name === name).map((j) => j.id ?? "");
      for (const id of ids) expect(await redis.exists(`${prefix}:intake:${id}`), `job ${id} is stored in Redis`).toBe(1);
      return ids.sort();
    },
    async job(id: string) {
      const job = await service.queues.byName.intake.getJob(id);
      if (job === undefined) throw new Error(`no job ${id}`);
      expect(Object.keys(job.data as object).every((k) => allowedJobFields.includes(k))).toBe(true);
      return job.data as Record<string, string>;
    },
    async total(): Promise<number> {
      const counts = await service.queues.byName.intake.getJobCounts("waiting", "delayed", "prioritized", "active", "completed", "failed");
      return Object.values(counts).reduce((a, b) => a + b, 0);
    },
  };
}

async function outcomeOf(res: Response) {
  expect(res.headers.get("content-type")).toContain("application/fhir+json");
  const body = (await res.json()) as { resourceType: string; issue: Array<{ severity: string; code: string; diagnostics?: string; expression?: string[] }> };
  expect(body.resourceType).toBe("OperationOutcome");
  const issue = body.issue[0]!;
  expect(issue.diagnostics?.length ?? 0, "diagnostics say what is wrong").toBeGreaterThan(10);
  return issue;
}

describe("classic R4 rest-hook (HAPI) with a bearer secret", () => {
  it("answers a PUT of an Appointment 202 only once its versioned job is in Redis, and a replay adds no second job", async () => {
    const t = await intakeOnly();
    const body = fixture("hapi-put-appointment.json");
    const res = await t.request("/hooks/fhir/hapi/Appointment/apt-7781", { method: "PUT", headers: { ...fhirJson, ...bearer(secrets.hapi) }, body });
    expect(res.status).toBe(202);
    expect(await t.jobs()).toEqual(["intake_hapi_Appointment_apt-7781_v3"]);
    expect(await t.job("intake_hapi_Appointment_apt-7781_v3")).toMatchObject({ source: "hapi", resourceType: "Appointment", id: "apt-7781", versionId: "3", interaction: "update", shape: "rest-hook-resource" });

    // The server retries the same version: acknowledged again, still one job.
    const replay = await t.request("/hooks/fhir/hapi/Appointment/apt-7781", { method: "PUT", headers: { ...fhirJson, ...bearer(secrets.hapi) }, body });
    expect(replay.status).toBe(202);
    expect(await t.jobs()).toEqual(["intake_hapi_Appointment_apt-7781_v3"]);

    // The next version is a new event.
    const v4 = JSON.stringify({ ...(JSON.parse(body) as object), meta: { versionId: "4" } });
    expect((await t.request("/hooks/fhir/hapi/Appointment/apt-7781", { method: "PUT", headers: { ...fhirJson, ...bearer(secrets.hapi) }, body: v4 })).status).toBe(202);
    expect(await t.jobs()).toEqual(["intake_hapi_Appointment_apt-7781_v3", "intake_hapi_Appointment_apt-7781_v4"]);
  });

  it("queues a HAPI DELETE without a body as one delete event, however often it is retried", async () => {
    const t = await intakeOnly();
    for (let i = 0; i < 2; i++) {
      const res = await t.request("/hooks/fhir/hapi/Appointment/apt-7781", { method: "DELETE", headers: bearer(secrets.hapi) });
      expect(res.status).toBe(202);
    }
    const [id, ...more] = await t.jobs();
    expect(more).toEqual([]);
    expect(id).toMatch(/^intake_hapi_Appointment_apt-7781_h[0-9a-f]{16}$/);
    expect(await t.job(id!)).toMatchObject({ interaction: "delete", shape: "rest-hook-delete" });
  });

  it("turns an empty POST into one pending catch-up search, however many pings arrive", async () => {
    const t = await intakeOnly();
    for (let i = 0; i < 3; i++) {
      const res = await t.request("/hooks/fhir/hapi", { method: "POST", headers: bearer(secrets.hapi) });
      expect(res.status).toBe(202);
    }
    expect(await t.jobs("catch-up")).toHaveLength(1);
    expect(await t.jobs()).toEqual([]);
  });

  it("keeps two version-less PUTs of the same resource apart, since nothing proves they are the same change", async () => {
    const clock = manualClock("2026-11-25T10:00:00Z");
    const t = await intakeOnly({}, clock);
    const noVersion = JSON.stringify({ resourceType: "Appointment", id: "apt-9", status: "booked", participant: [] });
    for (let i = 0; i < 2; i++) {
      expect((await t.request("/hooks/fhir/hapi/Appointment/apt-9", { method: "PUT", headers: { ...fhirJson, ...bearer(secrets.hapi) }, body: noVersion })).status).toBe(202);
      clock.advance(1_000);
    }
    expect(await t.jobs()).toHaveLength(2);
  });
});

describe("Medplum with an X-Signature HMAC", () => {
  it("queues a signed update under its version and a signed delete named by X-Medplum-Deleted-Resource", async () => {
    const t = await intakeOnly();
    const update = fixture("medplum-update-appointment.json");
    const res = await t.request("/hooks/fhir/medplum", {
      method: "POST",
      headers: { ...fhirJson, "x-medplum-subscription": "0b6a3f1e", "x-medplum-interaction": "update", "x-signature": sign(update) },
      body: update,
    });
    expect(res.status).toBe(202);
    const del = fixture("medplum-delete.json");
    const deleted = await t.request("/hooks/fhir/medplum", {
      method: "POST",
      headers: { ...fhirJson, "x-medplum-interaction": "delete", "x-medplum-deleted-resource": "Appointment/apt-7781", "x-signature": sign(del) },
      body: del,
    });
    expect(deleted.status).toBe(202);

    const ids = await t.jobs();
    expect(ids).toContain("intake_medplum_Appointment_apt-7781_vc2f1d9a4-5b7e-4c1d-9f3a-7e8b6a5d4c21");
    expect(await t.job("intake_medplum_Appointment_apt-7781_vc2f1d9a4-5b7e-4c1d-9f3a-7e8b6a5d4c21")).toMatchObject({ interaction: "update", shape: "medplum" });
    const deleteId = ids.find((id) => id.includes("_h"))!;
    expect(await t.job(deleteId)).toMatchObject({ resourceType: "Appointment", id: "apt-7781", interaction: "delete" });
  });

  it("answers 401 to a signature over re-serialised JSON, to another secret's signature and to none, queueing nothing", async () => {
    const t = await intakeOnly();
    const update = fixture("medplum-update-appointment.json");
    const reserialised = createHmac("sha256", secrets.medplum).update(JSON.stringify(JSON.parse(update), null, 2)).digest("hex");
    const otherSecret = createHmac("sha256", "another-secret-0123456789").update(update).digest("hex");
    for (const signature of [reserialised, otherSecret, undefined]) {
      const res = await t.request("/hooks/fhir/medplum", {
        method: "POST",
        headers: { ...fhirJson, "x-medplum-interaction": "update", ...(signature !== undefined ? { "x-signature": signature } : {}) },
        body: update,
      });
      expect(res.status).toBe(401);
      const issue = await outcomeOf(res);
      expect(issue.code).toBe(signature === undefined ? "login" : "security");
      if (signature !== undefined) expect(issue.diagnostics).not.toContain(signature);
    }
    expect(await t.total()).toBe(0);
  });
});

describe("topic-based notifications with a channel.header secret", () => {
  it("answers a handshake and a heartbeat 200 and queues nothing for them", async () => {
    const t = await intakeOnly();
    const handshake = await t.request("/hooks/fhir/topic", { method: "POST", headers: topicAuth, body: fixture("r4-backport-handshake.json") });
    expect(handshake.status).toBe(200);
    expect((await outcomeOf(handshake)).severity).toBe("information");
    const heartbeat = await t.request("/hooks/fhir/topic", { method: "POST", headers: topicAuth, body: fixture("r5-heartbeat.json") });
    expect(heartbeat.status).toBe(200);
    expect(await t.total()).toBe(0);
  });

  it("queues an id-only event once per event number, across retries", async () => {
    const t = await intakeOnly();
    // The subscription was last heard of at 318, so 319 is next and no gap is proven.
    expect((await t.request("/hooks/fhir/topic", { method: "POST", headers: topicAuth, body: fixture("r4-backport-heartbeat.json") })).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const res = await t.request("/hooks/fhir/topic", { method: "POST", headers: topicAuth, body: fixture("r4-backport-event-id-only.json") });
      expect(res.status).toBe(202);
    }
    const ids = await t.jobs();
    expect(ids).toHaveLength(1);
    expect(ids[0]).toMatch(/^intake_topic_Appointment_apt-7781_h[0-9a-f]{16}$/);
    expect(await t.job(ids[0]!)).toMatchObject({ eventNumber: "319", interaction: "unknown", shape: "topic-r4" });
    expect(await t.jobs("catch-up")).toEqual([]);
  });

  it("takes the version from a full-resource R4 event and from an R5 event with numeric counters", async () => {
    const t = await intakeOnly();
    expect((await t.request("/hooks/fhir/topic", { method: "POST", headers: topicAuth, body: fixture("r4-backport-event-full-resource.json") })).status).toBe(202);
    expect((await t.request("/hooks/fhir/topic", { method: "POST", headers: topicAuth, body: fixture("r5-event-numeric-counters.json") })).status).toBe(202);
    expect(await t.jobs()).toEqual(["intake_topic_Appointment_apt-7781_v3", "intake_topic_MedicationDispense_md-5521_v4"]);
    expect(await t.job("intake_topic_MedicationDispense_md-5521_v4")).toMatchObject({ eventNumber: "42", shape: "topic-r5" });
  });

  it("reads an R4B notification whose first entry is a SubscriptionStatus", async () => {
    const t = await intakeOnly();
    expect((await t.request("/hooks/fhir/topic", { method: "POST", headers: topicAuth, body: fixture("r4b-event-id-only.json") })).status).toBe(202);
    const [id] = await t.jobs();
    expect(await t.job(id!)).toMatchObject({ resourceType: "Appointment", id: "apt-7781", eventNumber: "319", shape: "topic-r4b" });
  });

  it("logs subscription-unhealthy when a notification says the subscription is in error, and still answers 200", async () => {
    const t = await intakeOnly();
    const res = await t.request("/hooks/fhir/topic", { method: "POST", headers: topicAuth, body: fixture("r4-backport-heartbeat.json").replace('"valueCode": "active"', '"valueCode": "error"') });
    expect(res.status).toBe(200);
    const line = t.service.logs.lines.find((l) => l.includes('"subscription-unhealthy"'));
    expect(JSON.parse(line ?? "{}")).toMatchObject({ event: "subscription-unhealthy", source: "topic", subscription: "Subscription/fn-appt", status: "error" });
  });

  it("queues a catch-up when the event numbers jump, and none when they follow on", async () => {
    const t = await intakeOnly();
    expect((await t.request("/hooks/fhir/topic", { method: "POST", headers: topicAuth, body: fixture("r4-backport-heartbeat.json").replace('"318"', '"317"') })).status).toBe(200);
    // 317 → 319: event 318 never arrived.
    expect((await t.request("/hooks/fhir/topic", { method: "POST", headers: topicAuth, body: fixture("r4-backport-event-id-only.json") })).status).toBe(202);
    expect(await t.jobs()).toHaveLength(1);
    const [gap] = await t.jobs("catch-up");
    const job = await t.service.queues.byName.intake.getJob(gap!);
    expect(job?.data).toMatchObject({ reason: "gap", subscriptionRef: "Subscription/fn-appt", missing: [{ from: 318, to: 318 }] });
    // Held back for the grace period: event 318 may still arrive out of order.
    expect(await job?.isDelayed()).toBe(true);
  });
});

describe("cloud event feeds", () => {
  it("echoes the Event Grid validation code and queues nothing", async () => {
    const t = await intakeOnly();
    const res = await t.request("/hooks/fhir/azure", { method: "POST", headers: { "content-type": "application/json", "x-eventgrid-key": secrets.azure }, body: fixture("event-grid-validation.json") });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ validationResponse: "512d38b6-c7b8-40c8-89fe-f46f9e9622b6" });
    expect(await t.total()).toBe(0);
  });

  it("queues every FHIR event of an Event Grid batch under its version and counts the unhandled Patient as ignored", async () => {
    const t = await intakeOnly();
    const res = await t.request("/hooks/fhir/azure", { method: "POST", headers: { "content-type": "application/json", "x-eventgrid-key": secrets.azure }, body: fixture("event-grid-batch.json") });
    expect(res.status).toBe(202);
    expect(await t.jobs()).toEqual([
      "intake_azure_Appointment_apt-7781_v3",
      "intake_azure_DiagnosticReport_dr-3301_v1",
      "intake_azure_MedicationRequest_mr-8812_v5",
    ]);
    expect(await t.job("intake_azure_MedicationRequest_mr-8812_v5")).toMatchObject({ interaction: "delete", shape: "azure-event-grid" });
    expect(await t.service.metrics.registry.getSingleMetricAsString("fhir_notify_notifications_ignored_total")).toContain('source="azure"} 1');
  });

  it("dedupes Pub/Sub pushes on messageId: a redelivery adds nothing, another message about the resource does", async () => {
    const t = await intakeOnly();
    const push = fixture("pubsub-push-resource-name.json");
    for (let i = 0; i < 2; i++) {
      expect((await t.request("/hooks/fhir/gcp", { method: "POST", headers: { "content-type": "application/json", ...bearer(secrets.gcp) }, body: push })).status).toBe(202);
    }
    expect(await t.jobs()).toHaveLength(1);
    const another = push.replaceAll("13527489012345678", "13527489012399999");
    expect((await t.request("/hooks/fhir/gcp", { method: "POST", headers: { "content-type": "application/json", ...bearer(secrets.gcp) }, body: another })).status).toBe(202);
    const ids = await t.jobs();
    expect(ids).toHaveLength(2);
    for (const id of ids) expect(await t.job(id)).toMatchObject({ resourceType: "Appointment", id: "apt-7781", shape: "google-pubsub" });
  });
});

describe("bad input gets a 4xx OperationOutcome with a useful diagnostic, and nothing is queued", () => {
  const hapi = { ...fhirJson, ...bearer(secrets.hapi) };
  const cases: Array<{ what: string; path: string; init: RequestInit; status: number; code: string; expression?: string }> = [
    { what: "malformed JSON", path: "/hooks/fhir/hapi", init: { method: "POST", headers: hapi, body: '{"resourceType":"Appointment",' }, status: 400, code: "structure" },
    { what: "JSON that is not FHIR", path: "/hooks/fhir/hapi", init: { method: "POST", headers: hapi, body: fixture("not-a-fhir-resource.json") }, status: 400, code: "structure" },
    { what: "a misspelt resourceType", path: "/hooks/fhir/hapi", init: { method: "POST", headers: hapi, body: fixture("unknown-resource-type.json") }, status: 400, code: "invalid", expression: "resourceType" },
    { what: "an Appointment without id", path: "/hooks/fhir/hapi", init: { method: "POST", headers: hapi, body: fixture("appointment-without-id.json") }, status: 400, code: "required", expression: "Appointment.id" },
    { what: "a body whose id differs from the URL", path: "/hooks/fhir/hapi/Appointment/apt-1", init: { method: "PUT", headers: hapi, body: fixture("hapi-put-appointment.json") }, status: 400, code: "invalid", expression: "Appointment.id" },
    { what: "a HAPI transaction Bundle", path: "/hooks/fhir/hapi", init: { method: "POST", headers: hapi, body: fixture("hapi-transaction-bundle.json") }, status: 400, code: "invalid", expression: "Bundle.type" },
    { what: "a history Bundle that is not a notification", path: "/hooks/fhir/hapi", init: { method: "POST", headers: hapi, body: fixture("history-bundle-wrong-first-entry.json") }, status: 400, code: "invalid" },
    { what: "FHIR XML", path: "/hooks/fhir/hapi/Appointment/apt-7781", init: { method: "PUT", headers: { ...hapi, "content-type": "application/fhir+xml" }, body: "<Appointment/>" }, status: 415, code: "not-supported" },
    { what: "text/plain", path: "/hooks/fhir/hapi/Appointment/apt-7781", init: { method: "PUT", headers: { ...hapi, "content-type": "text/plain" }, body: fixture("hapi-put-appointment.json") }, status: 415, code: "not-supported" },
    { what: "a 10 MB body", path: "/hooks/fhir/hapi", init: { method: "POST", headers: hapi, body: `{"resourceType":"Appointment","id":"a1","comment":"${"x".repeat(10 * 1024 * 1024)}"}` }, status: 413, code: "too-long" },
    { what: "a wrong bearer token", path: "/hooks/fhir/hapi", init: { method: "POST", headers: { ...fhirJson, ...bearer("hapi-token-0123456789abcdeX") }, body: fixture("hapi-put-appointment.json") }, status: 401, code: "security" },
    { what: "no token at all", path: "/hooks/fhir/hapi", init: { method: "POST", headers: fhirJson, body: fixture("hapi-put-appointment.json") }, status: 401, code: "login" },
    { what: "the topic header with a wrong value", path: "/hooks/fhir/topic", init: { method: "POST", headers: { ...topicAuth, "x-fhir-notify-key": "topic-key-0000000000000000" }, body: fixture("r4-backport-event-id-only.json") }, status: 401, code: "security" },
    { what: "a source nobody configured", path: "/hooks/fhir/nope", init: { method: "POST", headers: hapi, body: fixture("hapi-put-appointment.json") }, status: 404, code: "not-found" },
    { what: "a type in the URL FHIR does not define", path: "/hooks/fhir/hapi/Appointmnt/apt-7781", init: { method: "DELETE", headers: hapi }, status: 400, code: "invalid" },
  ];

  it.each(cases)("$what → $status $code", async ({ path, init, status, code, expression }) => {
    const t = await intakeOnly();
    const res = await t.request(path, init);
    expect(res.status).toBe(status);
    const issue = await outcomeOf(res);
    expect(issue.code).toBe(code);
    if (expression !== undefined) expect(issue.expression).toEqual([expression]);
    // Diagnostics name the problem, never the values sent (they can be PHI or secrets).
    for (const value of ["Synthetic Patient One", "hapi-token-0123456789abcdeX", "apt-7781", "Appointmnt\""]) expect(issue.diagnostics).not.toContain(value);
    expect(await t.total()).toBe(0);
  });

  it("answers any other method 405 with an Allow header", async () => {
    const t = await intakeOnly();
    const res = await t.request("/hooks/fhir/hapi", { method: "PATCH", headers: bearer(secrets.hapi) });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toContain("POST");
    expect((await outcomeOf(res)).code).toBe("not-supported");
    expect(await t.total()).toBe(0);
  });

  it("rejects a body over the limit on the real socket too, before reading it all", async () => {
    const t = await intakeOnly();
    const res = await fetch(`${t.service.url}/hooks/fhir/hapi`, {
      method: "POST",
      headers: { ...fhirJson, ...bearer(secrets.hapi) },
      body: `{"resourceType":"Appointment","id":"a1","comment":"${"x".repeat(10 * 1024 * 1024)}"}`,
    });
    expect(res.status).toBe(413);
    expect((await outcomeOf(res)).code).toBe("too-long");
    expect(await t.total()).toBe(0);
  });

  it("stops reading a chunked body without Content-Length once it passes the limit", async () => {
    const t = await intakeOnly({ http: { port: 0, bodyLimitBytes: 64 * 1024 } });
    const chunk = new TextEncoder().encode("x".repeat(16 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Endless unless the server stops reading; bounded at 4 MiB so a broken limit fails instead of hanging.
        if (sent >= 4 * 1024 * 1024) return controller.close();
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    const res = await fetch(`${t.service.url}/hooks/fhir/hapi`, { method: "POST", headers: { ...fhirJson, ...bearer(secrets.hapi) }, body, duplex: "half" });
    expect(res.status).toBe(413);
    expect((await outcomeOf(res)).code).toBe("too-long");
    expect(await t.total()).toBe(0);
  });
});
