import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { startEmbeddedRedis } from "../../src/redis/embedded-redis.js";
import { startTestService } from "../support/start-test-service.js";
import { captureLogs } from "../support/log-capture.js";

const sourceConfig = { sources: { hapi: { auth: { type: "bearer", token: "test-token-0123456789abcdef" } } } };
const auth = { authorization: "Bearer test-token-0123456789abcdef" };

async function outcomeOf(res: Response) {
  expect(res.headers.get("content-type")).toContain("application/fhir+json");
  const body = (await res.json()) as { resourceType: string; issue: { severity: string; code: string; diagnostics?: string }[] };
  expect(body.resourceType).toBe("OperationOutcome");
  return body.issue[0]!;
}

describe("the HTTP edge answers bad input with a 4xx OperationOutcome and keeps serving", () => {
  it("rejects malformed JSON, a wrong content type, an oversized body, an unknown source and a missing token", async () => {
    const service = await startTestService({ config: { ...sourceConfig, http: { port: 0, bodyLimitBytes: 64 * 1024 } } });
    const { app } = service;

    const malformed = await app.request("/hooks/fhir/hapi/Appointment/a1", { method: "PUT", headers: { "content-type": "application/fhir+json", ...auth }, body: '{"resourceType": "Appointment",' });
    expect(malformed.status).toBe(400);
    expect((await outcomeOf(malformed)).diagnostics).not.toContain("Appointment\",");

    const xml = await app.request("/hooks/fhir/hapi/Appointment/a1", { method: "PUT", headers: { "content-type": "application/fhir+xml", ...auth }, body: "<Appointment/>" });
    expect(xml.status).toBe(415);
    expect((await outcomeOf(xml)).code).toBe("not-supported");

    const huge = await app.request("/hooks/fhir/hapi", { method: "POST", headers: { "content-type": "application/fhir+json", ...auth }, body: `{"resourceType":"Appointment","id":"a1","comment":"${"x".repeat(70 * 1024)}"}` });
    expect(huge.status).toBe(413);
    expect((await outcomeOf(huge)).code).toBe("too-long");

    const unknown = await app.request("/hooks/fhir/nope", { method: "POST", headers: { "content-type": "application/fhir+json", ...auth }, body: "{}" });
    expect(unknown.status).toBe(404);
    expect((await outcomeOf(unknown)).code).toBe("not-found");

    const anonymous = await app.request("/hooks/fhir/hapi", { method: "POST", headers: { "content-type": "application/fhir+json" }, body: "{}" });
    expect(anonymous.status).toBe(401);
    await outcomeOf(anonymous);

    const wrongToken = await app.request("/hooks/fhir/hapi", { method: "POST", headers: { "content-type": "application/fhir+json", authorization: "Bearer test-token-0123456789abcdeX" }, body: "{}" });
    expect(wrongToken.status).toBe(401);

    const patch = await app.request("/hooks/fhir/hapi", { method: "PATCH", headers: auth });
    expect(patch.status).toBe(405);

    const nowhere = await app.request("/no/such/route");
    expect(nowhere.status).toBe(404);
    await outcomeOf(nowhere);

    // Nothing of the above was queued, and the process still answers.
    const counts = await service.queues.byName.intake.getJobCounts("waiting", "delayed", "active", "completed");
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
    expect((await app.request("/healthz")).status).toBe(200);
  });

  it("answers POST /admin/preview with 413 over the body limit and 415 for a body that is not JSON", async () => {
    const service = await startTestService({ config: { http: { port: 0, bodyLimitBytes: 16 * 1024 } } });
    const { app } = service;
    const huge = await app.request("/admin/preview", { method: "POST", headers: { "content-type": "application/fhir+json" }, body: `{"resourceType":"Appointment","comment":"${"x".repeat(20 * 1024)}"}` });
    expect(huge.status).toBe(413);
    expect((await outcomeOf(huge)).code).toBe("too-long");

    const form = await app.request("/admin/preview", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "resourceType=Appointment" });
    expect(form.status).toBe(415);
    expect((await outcomeOf(form)).code).toBe("not-supported");

    const ok = await app.request("/admin/preview", { method: "POST", headers: { "content-type": "application/fhir+json; charset=utf-8" }, body: '{"resourceType":"Appointment","status":"proposed","participant":[]}' });
    expect(ok.status).toBe(200);
  });

  it("answers 503 with Retry-After, not 2xx, when Redis cannot take the event", async () => {
    // A Redis of its own, so stopping it disturbs no other test.
    const redis = await startEmbeddedRedis(mkdtempSync(join(tmpdir(), "fn-redis-")));
    onTestFinished(() => redis.stop());
    const service = await startTestService({ role: "api", config: { ...sourceConfig, fhir: { baseUrl: "http://127.0.0.1:9/fhir" }, redis: { url: redis.url } } });
    await redis.stop();
    const res = await service.app.request("/hooks/fhir/hapi/Appointment/a1", {
      method: "PUT",
      headers: { "content-type": "application/fhir+json", ...auth },
      body: JSON.stringify({ resourceType: "Appointment", id: "a1", meta: { versionId: "1" }, status: "booked", participant: [] }),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    // A failure is logged, so it carries the request id the log line has.
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect((await outcomeOf(res)).code).toBe("transient");
  });

  it("accepts notifications with one prepared 202 body, and makes no request id for a request that logs nothing", async () => {
    // At info, as in production: the accepted-notification line is debug.
    const service = await startTestService({ role: "api", log: captureLogs("info").log, config: { ...sourceConfig, fhir: { baseUrl: "http://127.0.0.1:9/fhir" } } });
    const put = (id: string) =>
      service.app.request(`/hooks/fhir/hapi/Appointment/${id}`, {
        method: "PUT",
        headers: { "content-type": "application/fhir+json", ...auth },
        body: JSON.stringify({ resourceType: "Appointment", id, meta: { versionId: "1" }, status: "booked", participant: [] }),
      });
    const bodies: string[] = [];
    for (const id of ["a1", "a2"]) {
      const res = await put(id);
      expect(res.status).toBe(202);
      expect(res.headers.get("x-request-id")).toBeNull();
      expect(res.headers.get("content-type")).toBe("application/fhir+json");
      const text = await res.text();
      // The shared headers object must never keep the first body's length for another body.
      expect(Number(res.headers.get("content-length") ?? Buffer.byteLength(text))).toBe(Buffer.byteLength(text));
      bodies.push(text);
    }
    expect(bodies[1]).toBe(bodies[0]);
    expect(JSON.parse(bodies[0]!)).toMatchObject({ resourceType: "OperationOutcome", issue: [{ severity: "information", diagnostics: "accepted 1 event(s), ignored 0" }] });
  });

  it("routes every request, the FHIR hooks included, with Hono's RegExpRouter although the queue dashboard is mounted", async () => {
    const service = await startTestService({ config: { admin: { token: "admin-token-0123456789" } } });
    expect((await service.app.request("/healthz")).status).toBe(200);
    // SmartRouter settles on its first match; Bull Board's patterns used to force the TrieRouter.
    expect((service.app.router as { name: string }).name).toBe("SmartRouter + RegExpRouter");
    const api = await service.app.request("/admin/queues/api/queues", { headers: { authorization: "Bearer admin-token-0123456789" } });
    expect(api.status).toBe(200);
  });

  it("keeps the admin API closed to a wrong token and open to the right one", async () => {
    const service = await startTestService({ config: { admin: { token: "admin-token-0123456789" } } });
    expect((await service.app.request("/admin/outbox")).status).toBe(401);
    expect((await service.app.request("/admin/outbox", { headers: { authorization: "Bearer admin-token-012345678X" } })).status).toBe(401);
    const ok = await service.app.request("/admin/outbox", { headers: { authorization: "Bearer admin-token-0123456789" } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ count: 0, entries: [] });
    // The Bull Board queue dashboard sits behind the same token.
    expect((await service.app.request("/admin/queues")).status).toBe(401);
    const board = await service.app.request("/admin/queues", { headers: { authorization: "Bearer admin-token-0123456789" } });
    expect(board.status).toBe(200);
    expect(await board.text()).toContain("fhir-notify queues");
  });
});
