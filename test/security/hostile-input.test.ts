import { readdirSync, readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { serve, type ServerType } from "@hono/node-server";
import { fc } from "@fast-check/vitest";
import { describe, expect, it, onTestFinished } from "vitest";
import { signWebhook } from "../fakes/graph-api.server.js";
import { startTestService } from "../support/start-test-service.js";
import {
  contentTypeArb,
  deeplyNested,
  encode,
  encodingArb,
  expectHandled,
  expectPrototypeClean,
  fhirishJson,
  fuzzRuns,
  hostileObject,
  hostileString,
  pollutionBodies,
  realisticResources,
} from "./hostile-payloads.js";

const hookToken = "hook-token-0123456789abcdef";
const appSecret = "whatsapp-app-secret-for-fuzzing";
const adminToken = "admin-token-0123456789abcdef";

/** One API-role service with the sandbox, a bearer FHIR source, a WhatsApp app secret and an admin token. */
async function hostileTarget() {
  return startTestService({
    role: "api",
    config: {
      sources: {
        fz: { auth: { type: "bearer", token: hookToken } },
        fzb: { auth: { type: "bearer", token: hookToken }, subscription: { style: "backport-r4", payload: "full-resource", topicUrl: "https://ehr.example.org/fhir/SubscriptionTopic/appointment-changed" } },
      },
      whatsapp: { appSecret },
      admin: { token: adminToken },
    },
  });
}

type Service = Awaited<ReturnType<typeof hostileTarget>>;

/**
 * The same app behind a real loopback socket. Under @hono/node-server intake reads the Node request
 * itself (not the web stream app.request() uses), so both paths get the hostile bodies.
 */
async function overSocket(service: Service): Promise<(path: string, init: RequestInit) => Promise<Response>> {
  const server = await new Promise<ServerType>((done) => {
    const s = serve({ fetch: service.app.fetch, port: 0, hostname: "127.0.0.1" }, () => done(s));
  });
  onTestFinished(() => new Promise<void>((done) => server.close(() => done())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return (path, init) => fetch(`${base}${path}`, init);
}

async function stillServing(service: Service): Promise<void> {
  const res = await service.app.request("/healthz");
  expect(res.status).toBe(200);
  expectPrototypeClean();
}

const whatsappFixtures = readdirSync(new URL("../fixtures/whatsapp/", import.meta.url))
  .filter((f) => f.endsWith(".json") && f !== "error-codes.json" && f !== "templates.json")
  .map((f) => JSON.parse(readFileSync(new URL(`../fixtures/whatsapp/${f}`, import.meta.url), "utf8")) as unknown);

const rawSegments = new Set(["%", "%ZZ", "%E0%A4%A", "%C0%AF", "..", ".", "%00"]);
/** URL-safe form of a generated segment; a few raw, malformed percent-escapes go through as they are. */
const safePath = (s: string) => (rawSegments.has(s) ? s : encodeURIComponent(s.replace(/[\ud800-\udfff]/g, "\ufffd")).slice(0, 200) || "x");
const pathSegment = fc.oneof(fc.constantFrom("Appointment", "MedicationDispense", "DiagnosticReport", "Task", "Patient", "Bundle", "a1", "md-9001", ...rawSegments), hostileString);

const hookCase = fc.record({
  method: fc.constantFrom("POST", "PUT", "DELETE"),
  source: fc.constantFrom("fz", "fzb"),
  path: fc.option(fc.tuple(pathSegment, pathSegment), { nil: undefined }),
  body: fhirishJson,
  encoding: encodingArb,
  contentType: contentTypeArb,
  seed: fc.nat(),
  viaSocket: fc.boolean(),
  extraHeaders: fc.dictionary(fc.constantFrom("x-medplum-deleted-resource", "x-signature", "content-encoding", "if-match", "ce-type", "aeg-event-type"), hostileString.map((s) => s.replace(/[^\x20-\x7e]/g, "")), { maxKeys: 2 }),
});
type HookCase = typeof hookCase extends fc.Arbitrary<infer T> ? T : never;

describe("hostile input on every route gets a 4xx with a reason, never a 5xx, and the process keeps serving", () => {
  it("/hooks/fhir answers random, mutated and mis-encoded notifications with 2xx or a 4xx OperationOutcome", async () => {
    const service = await hostileTarget();
    const socket = await overSocket(service);
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        hookCase,
        async ({ method, source, path, body, encoding, contentType, seed, viaSocket, extraHeaders }) => {
          const url = `/hooks/fhir/${source}${path !== undefined ? `/${safePath(path[0])}/${safePath(path[1])}` : ""}`;
          const init = {
            method,
            headers: { ...extraHeaders, ...(contentType !== "" ? { "content-type": contentType } : {}), authorization: `Bearer ${hookToken}` },
            body: encode(body, encoding, seed),
          };
          const res = viaSocket ? await socket(url, init) : await service.app.request(url, init);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          await expectHandled(res, `${method} ${url}`);
        },
      ),
      {
        numRuns: fuzzRuns,
        // Always include one plainly valid notification and one broken one, over both transports.
        examples: [true, false].flatMap((viaSocket): [HookCase][] => [
          [{ method: "PUT", source: "fz", path: ["Appointment", "ex-1"], body: { resourceType: "Appointment", id: "ex-1", meta: { versionId: "1" }, status: "booked", participant: [] }, encoding: "plain", contentType: "application/fhir+json", seed: 0, viaSocket, extraHeaders: {} }],
          [{ method: "POST", source: "fz", path: undefined, body: { resourceType: "Appointment", id: "ex-2" }, encoding: "truncated", contentType: "application/fhir+json", seed: 7, viaSocket, extraHeaders: {} }],
        ]),
      },
    );
    // The bearer was valid, so bodies were parsed: some accepted, some refused for their content.
    expect(statuses.get(401) ?? 0).toBe(0);
    expect([...statuses.keys()].some((s) => s >= 200 && s < 300), JSON.stringify([...statuses])).toBe(true);
    expect([...statuses.keys()].some((s) => s === 400 || s === 415), JSON.stringify([...statuses])).toBe(true);
    await stillServing(service);
  });

  it("/hooks/whatsapp answers correctly signed but hostile bodies with 200 or a 4xx", async () => {
    const service = await hostileTarget();
    const body = fc.oneof(fc.constantFrom(...whatsappFixtures), fc.constantFrom(...whatsappFixtures).chain((base) => fc.record({ base: fc.constant(base), patch: hostileObject }).map(({ base: b, patch }) => mutateDeep(b, patch))), hostileObject, fc.jsonValue({ maxDepth: 4 }));
    await fc.assert(
      fc.asyncProperty(body, encodingArb, fc.nat(), async (value, encoding, seed) => {
        const raw = encode(value, encoding, seed);
        const res = await service.app.request("/hooks/whatsapp", { method: "POST", headers: { "content-type": "application/json", "x-hub-signature-256": signWebhook(raw, appSecret) }, body: raw });
        await expectHandled(res, "POST /hooks/whatsapp");
      }),
      { numRuns: fuzzRuns },
    );
    await stillServing(service);
  });

  it("/admin previews random resources and refuses malformed replay bodies and ids with a 4xx", async () => {
    const service = await hostileTarget();
    const admin = { authorization: `Bearer ${adminToken}`, "content-type": "application/json" };
    await fc.assert(
      fc.asyncProperty(fhirishJson, encodingArb, fc.nat(), async (value, encoding, seed) => {
        const res = await service.app.request("/admin/preview", { method: "POST", headers: admin, body: encode(value, encoding, seed) });
        await expectHandled(res, "POST /admin/preview");
      }),
      { numRuns: fuzzRuns },
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(hostileObject, fc.record({ ids: fc.oneof(fc.array(hostileString, { maxLength: 5 }), hostileObject, hostileString) }), fc.jsonValue({ maxDepth: 3 })), async (value) => {
        const res = await service.app.request("/admin/dlq/replay", { method: "POST", headers: admin, body: JSON.stringify(value) });
        await expectHandled(res, "POST /admin/dlq/replay");
      }),
      { numRuns: fuzzRuns },
    );
    await fc.assert(
      fc.asyncProperty(hostileString, hostileString, async (id, limit) => {
        await expectHandled(await service.app.request(`/admin/notifications/${safePath(id)}`, { headers: admin }), "GET /admin/notifications/:id");
        await expectHandled(await service.app.request(`/admin/notifications?limit=${safePath(limit)}`, { headers: admin }), "GET /admin/notifications");
      }),
      { numRuns: fuzzRuns },
    );
    await stillServing(service);
  });

  it("/sandbox/fhir answers random reads, searches and writes with an OperationOutcome on rejection", async () => {
    const service = await hostileTarget();
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH"),
          type: pathSegment,
          id: fc.option(pathSegment, { nil: undefined }),
          query: fc.array(fc.tuple(fc.constantFrom("_count", "_offset", "_since", "status", "date", "patient", "subject", "_id", "identifier", "_sort", "_include", "_elements"), hostileString), { maxLength: 3 }),
          body: fhirishJson,
          encoding: encodingArb,
          contentType: contentTypeArb,
          ifMatch: fc.option(hostileString.map((s) => s.replace(/[^\x20-\x7e]/g, "")), { nil: undefined }),
          seed: fc.nat(),
        }),
        async ({ method, type, id, query, body, encoding, contentType, ifMatch, seed }) => {
          const qs = new URLSearchParams(query).toString();
          const url = `/sandbox/fhir/${safePath(type)}${id !== undefined ? `/${safePath(id)}` : ""}${qs !== "" ? `?${qs}` : ""}`;
          const withBody = method === "POST" || method === "PUT" || method === "PATCH";
          const res = await service.app.request(url, {
            method,
            headers: { ...(contentType !== "" ? { "content-type": contentType } : {}), ...(ifMatch !== undefined ? { "if-match": ifMatch } : {}) },
            ...(withBody ? { body: encode(body, encoding, seed) } : {}),
          });
          await expectHandled(res, `${method} ${url}`);
        },
      ),
      { numRuns: fuzzRuns },
    );
    await stillServing(service);
  });

  it("10,000 levels of nesting are refused or accepted on every route without a crash", async () => {
    const service = await hostileTarget();
    const socket = await overSocket(service);
    const appointment = { resourceType: "Appointment", id: "deep-1", meta: { versionId: "1" }, status: "booked" };
    const bodies = [deeplyNested(10_000, "array"), deeplyNested(10_000, "object"), deeplyNested(10_000, "array", appointment), deeplyNested(10_000, "object", appointment)];
    for (const body of bodies) {
      const raw = new TextEncoder().encode(body);
      const requests: [string, RequestInit][] = [
        ["/hooks/fhir/fz", { method: "POST", headers: { "content-type": "application/fhir+json", authorization: `Bearer ${hookToken}` }, body: raw }],
        ["/hooks/fhir/fz/Appointment/deep-1", { method: "PUT", headers: { "content-type": "application/fhir+json", authorization: `Bearer ${hookToken}` }, body: raw }],
        ["/hooks/fhir/fzb", { method: "POST", headers: { "content-type": "application/fhir+json", authorization: `Bearer ${hookToken}` }, body: raw }],
        ["/hooks/whatsapp", { method: "POST", headers: { "content-type": "application/json", "x-hub-signature-256": signWebhook(raw, appSecret) }, body: raw }],
        ["/admin/preview", { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` }, body: raw }],
        ["/admin/dlq/replay", { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` }, body: raw }],
        ["/sandbox/fhir/Appointment", { method: "POST", headers: { "content-type": "application/fhir+json" }, body: raw }],
        ["/sandbox/fhir/Appointment/deep-1", { method: "PUT", headers: { "content-type": "application/fhir+json" }, body: raw }],
      ];
      for (const [url, init] of requests) {
        await expectHandled(await service.app.request(url, init), `${init.method} ${url} (deep)`);
        await expectHandled(await socket(url, init), `${init.method} ${url} (deep, over a socket)`);
      }
    }
    await stillServing(service);
  });

  it("__proto__, constructor and prototype keys never pollute Object.prototype on any route", async () => {
    const service = await hostileTarget();
    const seed = service.sandboxSeed!;
    for (const text of pollutionBodies("Appointment", "pp-1")) {
      const raw = new TextEncoder().encode(text);
      const requests: [string, RequestInit][] = [
        ["/hooks/fhir/fz", { method: "POST", headers: { "content-type": "application/fhir+json", authorization: `Bearer ${hookToken}` }, body: raw }],
        ["/hooks/fhir/fz/Appointment/pp-1", { method: "PUT", headers: { "content-type": "application/fhir+json", authorization: `Bearer ${hookToken}` }, body: raw }],
        ["/hooks/whatsapp", { method: "POST", headers: { "content-type": "application/json", "x-hub-signature-256": signWebhook(raw, appSecret) }, body: raw }],
        ["/admin/preview", { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` }, body: raw }],
        ["/sandbox/fhir/Appointment", { method: "POST", headers: { "content-type": "application/fhir+json" }, body: raw }],
        ["/sandbox/fhir/Appointment/pp-1", { method: "PUT", headers: { "content-type": "application/fhir+json" }, body: raw }],
      ];
      for (const [url, init] of requests) {
        await expectHandled(await service.app.request(url, init), `${init.method} ${url} (pollution)`);
        expectPrototypeClean();
      }
    }
    // A realistic appointment carrying the keys goes all the way through preview (mapping, FHIRPath, slots).
    const appointment = realisticResources()[0]!;
    const poisoned = JSON.stringify({ ...appointment, participant: [{ actor: { reference: `Patient/${seed.patientId}` }, status: "accepted" }] }).replace(/^\{/, '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},');
    await expectHandled(await service.app.request("/admin/preview", { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` }, body: poisoned }), "preview (pollution)");
    await stillServing(service);
  });

  it("bodies just over each route's limit get 413 and an OperationOutcome", async () => {
    const service = await hostileTarget();
    const socket = await overSocket(service);
    const over = (bytes: number) => `{"resourceType":"Appointment","id":"big","comment":"${"x".repeat(bytes)}"}`;
    const cases: [string, RequestInit][] = [
      ["/hooks/fhir/fz", { method: "POST", headers: { "content-type": "application/fhir+json", authorization: `Bearer ${hookToken}` }, body: over(service.config.http.bodyLimitBytes) }],
      ["/hooks/whatsapp", { method: "POST", headers: { "content-type": "application/json", "x-hub-signature-256": "sha256=00" }, body: over(service.config.http.webhookBodyLimitBytes) }],
      ["/sandbox/fhir/Appointment", { method: "POST", headers: { "content-type": "application/fhir+json" }, body: over(1024 * 1024) }],
    ];
    for (const [url, init] of cases) {
      for (const res of [await service.app.request(url, init), await socket(url, init)]) {
        expect(res.status, url).toBe(413);
        await expectHandled(res, url);
      }
    }
    await stillServing(service);
  });
});

/** Overlay `patch` onto a random nested object of `base` (a webhook with hostile parts). */
function mutateDeep(base: unknown, patch: Record<string, unknown>): unknown {
  const copy = structuredClone(base) as { entry?: { changes?: { value?: Record<string, unknown> }[] }[] };
  const value = copy.entry?.[0]?.changes?.[0]?.value;
  if (value === undefined) return { ...(copy as object), ...patch };
  for (const [k, v] of Object.entries(patch)) Object.defineProperty(value, k, { value: v, enumerable: true, writable: true, configurable: true });
  return copy;
}
