import type { Appointment, Bundle, OperationOutcome, Patient } from "fhir/r4";
import { Hono } from "hono";
import { describe, expect, it, onTestFinished } from "vitest";
import { createSandboxFhir, type SandboxFhir } from "../../src/sandbox/sandbox-fhir.js";
import { manualClock } from "../../src/shared/clock.js";
import { createLogger } from "../../src/shared/logger.js";

const base = "http://127.0.0.1:8080/sandbox/fhir";
const fhirJson = { "content-type": "application/fhir+json" };

function sandbox(clock = manualClock("2025-03-10T09:00:00.000Z")): SandboxFhir & { clock: typeof clock } {
  const s = createSandboxFhir({ publicBaseUrl: base, log: createLogger("silent"), clock });
  onTestFinished(() => s.close());
  return { ...s, clock };
}

function patient(family = "Rivera"): Patient {
  return {
    resourceType: "Patient",
    identifier: [{ system: "https://fhir-notify.dev/sid/demo-patient", value: `mrn-${family.toLowerCase()}` }],
    active: true,
    name: [{ given: ["Jordan"], family }],
    telecom: [{ system: "phone", value: "+15555550142", use: "mobile" }],
  };
}

function appointment(patientId: string, status: Appointment["status"] = "booked"): Appointment {
  return {
    resourceType: "Appointment",
    status,
    start: "2025-03-12T14:30:00Z",
    end: "2025-03-12T15:00:00Z",
    participant: [{ actor: { reference: `Patient/${patientId}` }, status: "accepted" }],
  };
}

async function post(s: SandboxFhir, path: string, body: object, headers: Record<string, string> = {}) {
  return s.app.request(path, { method: "POST", headers: { ...fhirJson, ...headers }, body: JSON.stringify(body) });
}

async function json<T>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

describe("sandbox FHIR server: create, read, vread, update", () => {
  it("answers a create with 201, a Location to the version and a weak ETag, with server-set meta", async () => {
    const s = sandbox();
    const res = await post(s, "/Patient", { ...patient(), id: "client-chosen", meta: { versionId: "99" } });
    expect(res.status).toBe(201);
    expect(res.headers.get("content-type")).toMatch(/^application\/fhir\+json/);
    const created = await json<Patient>(res);
    expect(created.id).not.toBe("client-chosen");
    expect(created.meta).toMatchObject({ versionId: "1", lastUpdated: "2025-03-10T09:00:00.000Z" });
    expect(res.headers.get("etag")).toBe('W/"1"');
    expect(res.headers.get("location")).toBe(`${base}/Patient/${created.id}/_history/1`);

    const read = await s.app.request(`/Patient/${created.id}`);
    expect(read.status).toBe(200);
    expect(read.headers.get("etag")).toBe('W/"1"');
    expect(await json<Patient>(read)).toEqual(created);
  });

  it("keeps every version readable by vread after an update and increments the version id", async () => {
    const s = sandbox();
    const created = await json<Patient & { id: string }>(await post(s, "/Patient", patient()));
    s.clock.advance(60_000);
    const res = await s.app.request(`/Patient/${created.id}`, {
      method: "PUT",
      headers: { ...fhirJson, "if-match": 'W/"1"' },
      body: JSON.stringify({ ...created, active: false }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("etag")).toBe('W/"2"');
    const updated = await json<Patient>(res);
    expect(updated.meta).toMatchObject({ versionId: "2", lastUpdated: "2025-03-10T09:01:00.000Z" });

    const v1 = await json<Patient>(await s.app.request(`/Patient/${created.id}/_history/1`));
    expect(v1.active).toBe(true);
    const v2 = await json<Patient>(await s.app.request(`/Patient/${created.id}/_history/2`));
    expect(v2.active).toBe(false);
    expect((await s.app.request(`/Patient/${created.id}/_history/3`)).status).toBe(404);
  });

  it("refuses an update whose If-Match names an older version with 412 and leaves the resource unchanged", async () => {
    const s = sandbox();
    const created = await json<Patient & { id: string }>(await post(s, "/Patient", patient()));
    const put = (ifMatch: string) =>
      s.app.request(`/Patient/${created.id}`, { method: "PUT", headers: { ...fhirJson, "if-match": ifMatch }, body: JSON.stringify({ ...created, active: false }) });
    expect((await put('W/"1"')).status).toBe(200);
    const stale = await put('W/"1"');
    expect(stale.status).toBe(412);
    expect(await json<OperationOutcome>(stale)).toMatchObject({ resourceType: "OperationOutcome" });
    expect((await json<Patient>(await s.app.request(`/Patient/${created.id}`))).meta?.versionId).toBe("2");
  });

  it("rejects an If-Match header that is not an ETag instead of ignoring it", async () => {
    const s = sandbox();
    const created = await json<Patient & { id: string }>(await post(s, "/Patient", patient()));
    const res = await s.app.request(`/Patient/${created.id}`, { method: "PUT", headers: { ...fhirJson, "if-match": "1" }, body: JSON.stringify(created) });
    expect(res.status).toBe(400);
  });

  it("rejects a resource that does not conform to R4 with a 400 OperationOutcome naming the element", async () => {
    const s = sandbox();
    const res = await post(s, "/Patient", { ...patient(), birthDate: "yesterday" });
    expect(res.status).toBe(400);
    const outcome = await json<OperationOutcome>(res);
    expect(outcome.issue[0]?.expression?.[0]).toMatch(/^Patient\.birthDate/);
  });

  it("answers an unknown resource type with 404 and a non-JSON body with 415", async () => {
    const s = sandbox();
    expect((await s.app.request("/Patientt/123")).status).toBe(404);
    const res = await s.app.request("/Patient", { method: "POST", headers: { "content-type": "text/plain" }, body: "hello" });
    expect(res.status).toBe(415);
    expect(await json<OperationOutcome>(res)).toMatchObject({ issue: [{ code: "not-supported" }] });
  });

  it("answers a PUT that creates a resource with a client-chosen id with 201", async () => {
    const s = sandbox();
    const res = await s.app.request("/Patient/demo-rivera", { method: "PUT", headers: fhirJson, body: JSON.stringify({ ...patient(), id: "demo-rivera" }) });
    expect(res.status).toBe(201);
    expect(res.headers.get("location")).toBe(`${base}/Patient/demo-rivera/_history/1`);
    const again = await s.app.request("/Patient/demo-rivera", { method: "PUT", headers: fhirJson, body: JSON.stringify({ ...patient(), id: "demo-rivera" }) });
    expect(again.status).toBe(200);
  });

  it("accepts application/json as well as application/fhir+json", async () => {
    const s = sandbox();
    const res = await s.app.request("/Patient", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(patient()) });
    expect(res.status).toBe(201);
  });
});

describe("sandbox FHIR server: conditional create", () => {
  it("creates on zero matches (201), returns the existing resource on one (200) and refuses on several (412)", async () => {
    const s = sandbox();
    const ifNoneExist = { "if-none-exist": "identifier=https://fhir-notify.dev/sid/demo-patient|mrn-rivera" };
    const first = await post(s, "/Patient", patient(), ifNoneExist);
    expect(first.status).toBe(201);
    const firstId = (await json<Patient>(first)).id;

    const second = await post(s, "/Patient", patient(), ifNoneExist);
    expect(second.status).toBe(200);
    expect((await json<Patient>(second)).id).toBe(firstId);

    await post(s, "/Patient", patient());
    const third = await post(s, "/Patient", patient(), ifNoneExist);
    expect(third.status).toBe(412);
    expect((await json<Bundle>(await s.app.request("/Patient"))).total).toBe(2);
  });

  it("does not create twice when two conditional creates race", async () => {
    const s = sandbox();
    const ifNoneExist = { "if-none-exist": "identifier=https://fhir-notify.dev/sid/demo-patient|mrn-rivera" };
    const statuses = await Promise.all([post(s, "/Patient", patient(), ifNoneExist), post(s, "/Patient", patient(), ifNoneExist)]);
    expect(statuses.map((r) => r.status).sort()).toEqual([200, 201]);
  });
});

describe("sandbox FHIR server: delete and history", () => {
  it("answers 410 after a delete and lists the delete in instance history as an entry without a resource", async () => {
    const s = sandbox();
    const created = await json<Patient & { id: string }>(await post(s, "/Patient", patient()));
    await s.app.request(`/Patient/${created.id}`, { method: "PUT", headers: fhirJson, body: JSON.stringify({ ...created, active: false }) });
    expect((await s.app.request(`/Patient/${created.id}`, { method: "DELETE" })).status).toBe(200);
    expect((await s.app.request(`/Patient/${created.id}`)).status).toBe(410);

    const history = await json<Bundle>(await s.app.request(`/Patient/${created.id}/_history`));
    expect(history.type).toBe("history");
    expect(history.entry?.map((e) => [e.request?.method, e.response?.etag, e.resource !== undefined])).toEqual([
      ["DELETE", 'W/"3"', false],
      ["PUT", 'W/"2"', true],
      ["POST", 'W/"1"', true],
    ]);
    expect(history.entry?.[0]?.request?.url).toBe(`Patient/${created.id}`);
    expect(history.entry?.[0]?.fullUrl).toBe(`${base}/Patient/${created.id}`);
  });

  it("lists type history newest first across resources, filtered by _since", async () => {
    const s = sandbox();
    const a = await json<Patient & { id: string }>(await post(s, "/Patient", patient("Rivera")));
    s.clock.advance(1000);
    const b = await json<Patient & { id: string }>(await post(s, "/Patient", patient("Okafor")));
    await post(s, "/Practitioner", { resourceType: "Practitioner", name: [{ family: "Lee" }] });

    const all = await json<Bundle>(await s.app.request("/Patient/_history"));
    expect(all.entry?.map((e) => e.resource?.id)).toEqual([b.id, a.id]);
    const since = await json<Bundle>(await s.app.request(`/Patient/_history?_since=${encodeURIComponent("2025-03-10T09:00:00.500Z")}`));
    expect(since.entry?.map((e) => e.resource?.id)).toEqual([b.id]);
  });
});

describe("sandbox FHIR server: search", () => {
  it("pages through results by following Bundle next links until there are none", async () => {
    const s = sandbox();
    const ids: string[] = [];
    for (const family of ["Rivera", "Okafor", "Nguyen", "Haddad", "Silva"]) {
      ids.push((await json<Patient & { id: string }>(await post(s, "/Patient", patient(family)))).id);
    }
    const seen: string[] = [];
    let url: string | undefined = "/Patient?_count=2";
    let pages = 0;
    while (url !== undefined) {
      const page: Bundle = await json<Bundle>(await s.app.request(url));
      expect(page.total).toBe(5);
      seen.push(...(page.entry ?? []).map((e) => e.resource?.id ?? ""));
      const next = page.link?.find((l) => l.relation === "next")?.url;
      expect(next === undefined || next.startsWith(base)).toBe(true);
      url = next?.slice(base.length);
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(ids);
  });

  it("filters by _lastUpdated and sorts by _lastUpdated in both directions", async () => {
    const s = sandbox();
    const old = await json<Patient & { id: string }>(await post(s, "/Patient", patient("Rivera")));
    s.clock.set("2025-03-11T09:00:00.000Z");
    const recent = await json<Patient & { id: string }>(await post(s, "/Patient", patient("Okafor")));

    const newer = await json<Bundle>(await s.app.request("/Patient?_lastUpdated=gt2025-03-10T12:00:00Z"));
    expect(newer.entry?.map((e) => e.resource?.id)).toEqual([recent.id]);
    const asc = await json<Bundle>(await s.app.request("/Patient?_sort=_lastUpdated"));
    expect(asc.entry?.map((e) => e.resource?.id)).toEqual([old.id, recent.id]);
    const desc = await json<Bundle>(await s.app.request("/Patient?_sort=-_lastUpdated"));
    expect(desc.entry?.map((e) => e.resource?.id)).toEqual([recent.id, old.id]);
  });

  it("finds by _id, identifier system|value, status and patient given as a bare id or a reference", async () => {
    const s = sandbox();
    const p = await json<Patient & { id: string }>(await post(s, "/Patient", patient()));
    const booked = await json<Appointment & { id: string }>(await post(s, "/Appointment", appointment(p.id, "booked")));
    await post(s, "/Appointment", appointment(p.id, "proposed"));
    const ids = async (url: string) => ((await json<Bundle>(await s.app.request(url))).entry ?? []).map((e) => e.resource?.id);

    expect(await ids(`/Patient?_id=${p.id}`)).toEqual([p.id]);
    expect(await ids("/Patient?identifier=https://fhir-notify.dev/sid/demo-patient|mrn-rivera")).toEqual([p.id]);
    expect(await ids("/Patient?identifier=https://fhir-notify.dev/sid/demo-patient|mrn-other")).toEqual([]);
    expect(await ids(`/Appointment?patient=${p.id}&status=booked,cancelled`)).toEqual([booked.id]);
    expect(await ids(`/Appointment?patient=Patient/${p.id}&status=booked`)).toEqual([booked.id]);
  });

  it("searches with POST _search using form-encoded parameters", async () => {
    const s = sandbox();
    const p = await json<Patient & { id: string }>(await post(s, "/Patient", patient()));
    const res = await s.app.request("/Patient/_search", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ identifier: "https://fhir-notify.dev/sid/demo-patient|mrn-rivera" }).toString(),
    });
    expect(res.status).toBe(200);
    expect((await json<Bundle>(res)).entry?.map((e) => e.resource?.id)).toEqual([p.id]);
  });

  it("answers an unknown search parameter with 400 instead of ignoring it", async () => {
    const s = sandbox();
    const res = await s.app.request("/Patient?familly=Rivera");
    expect(res.status).toBe(400);
    expect(await json<OperationOutcome>(res)).toMatchObject({ issue: [{ expression: ["familly"] }] });
  });
});

describe("sandbox FHIR server: metadata, mounting and seed", () => {
  it("serves a CapabilityStatement for FHIR 4.0.1", async () => {
    const s = sandbox();
    const res = await s.app.request("/metadata");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ resourceType: "CapabilityStatement", fhirVersion: "4.0.1", kind: "instance" });
  });

  it("works when mounted under /sandbox/fhir of a parent app, errors included", async () => {
    const s = sandbox();
    const root = new Hono().route("/sandbox/fhir", s.app);
    const created = await root.request("/sandbox/fhir/Patient", { method: "POST", headers: fhirJson, body: JSON.stringify(patient()) });
    expect(created.status).toBe(201);
    const id = (await json<Patient>(created)).id;
    expect((await root.request(`/sandbox/fhir/Patient/${id}`)).status).toBe(200);
    const missing = await root.request("/sandbox/fhir/Patient/does-not-exist");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ resourceType: "OperationOutcome" });
  });

  it("seeds the demo patient, clinic, practitioner and opt-in consent, and a second seed creates nothing", async () => {
    const s = sandbox();
    const first = await s.seed();
    const second = await s.seed();
    expect(second).toEqual(first);
    const history = await json<Bundle>(await s.app.request("/_history"));
    expect(history.total).toBe(5);

    const found = await json<Bundle>(await s.app.request("/Patient?identifier=https://fhir-notify.dev/sid/demo-patient|demo-1"));
    const demo = found.entry?.[0]?.resource as Patient;
    expect(demo.id).toBe(first.patientId);
    expect(demo.name?.[0]).toMatchObject({ given: ["Alex"], family: "Rivera" });
    expect(demo.telecom).toContainEqual({ system: "phone", value: "+12025550123", use: "mobile", rank: 1 });

    const consents = await json<Bundle>(
      await s.app.request(`/Consent?patient=${first.patientId}&status=active&category=https://fhir-notify.dev/fhir/CodeSystem/consent-category|whatsapp-logistics`),
    );
    expect(consents.entry?.[0]?.resource).toMatchObject({ id: first.consentId, provision: { type: "permit" } });
    const location = await json<{ extension?: unknown[] }>(await s.app.request(`/Location/${first.locationId}`));
    expect(location.extension).toContainEqual({ url: "http://hl7.org/fhir/StructureDefinition/timezone", valueCode: "America/New_York" });
  });
});
