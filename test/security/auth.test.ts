import { createHmac } from "node:crypto";
import type { AddressInfo } from "node:net";
import { networkInterfaces } from "node:os";
import { Readable } from "node:stream";
import { serve, type ServerType } from "@hono/node-server";
import { describe, expect, it, onTestFinished } from "vitest";
import { signWebhook } from "../fakes/graph-api.server.js";
import { startTestService } from "../support/start-test-service.js";
import { rejectionMessage } from "./hostile-payloads.js";

const bearerToken = "bearer-token-0123456789abcdef";
const headerSecret = "header-secret-0123456789abcdef";
const hmacSecret = "hmac-secret-0123456789abcdef";
const appSecret = "whatsapp-app-secret-0123456789";
const adminToken = "admin-token-0123456789abcdef";

const appointment = (id: string, version = "1") =>
  JSON.stringify({ resourceType: "Appointment", id, meta: { versionId: version }, status: "booked", start: "2030-01-02T10:00:00Z", participant: [{ actor: { reference: "Patient/p1" }, status: "accepted" }] });
const hmacHex = (body: string, secret = hmacSecret) => createHmac("sha256", secret).update(body).digest("hex");

async function guardedService(extra: Record<string, unknown> = {}) {
  return startTestService({
    role: "api",
    config: {
      sources: {
        bearer: { auth: { type: "bearer", token: bearerToken } },
        header: { auth: { type: "header", name: "X-Api-Key", value: headerSecret } },
        hmac: { auth: { type: "hmac", header: "X-Signature", secret: hmacSecret } },
        open: { auth: { type: "none" } },
      },
      whatsapp: { appSecret },
      admin: { token: adminToken },
      ...extra,
    },
  });
}

/**
 * @hono/node-server's env for a request from `remoteAddress`: the Node request (a readable stream
 * of the body, which intake reads directly) with its socket.
 */
const fromRemote = (remoteAddress: string, body = "") => ({ incoming: Object.assign(Readable.from(body === "" ? [] : [Buffer.from(body)]), { socket: { remoteAddress } }) });

/** A non-loopback IPv4 address of this machine, if it has one; traffic to it never leaves the host. */
const lanAddress = Object.values(networkInterfaces())
  .flat()
  .find((i) => i !== undefined && !i.internal && i.family === "IPv4")?.address;

async function listen(app: { fetch: (req: Request, env?: unknown) => Response | Promise<Response> }, hostname: string): Promise<string> {
  const server = await new Promise<ServerType>((done) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname }, () => done(s));
  });
  onTestFinished(() => new Promise<void>((done) => server.close(() => done())));
  return `http://${hostname}:${(server.address() as AddressInfo).port}`;
}

async function expectRefused(res: Response, what: string, statuses: number[] = [401]): Promise<void> {
  const text = await res.text();
  expect(statuses, `${what} answered ${res.status}: ${text.slice(0, 200)}`).toContain(res.status);
  expect(rejectionMessage(JSON.parse(text)), what).not.toBe("");
}

async function queuedIntakeJobs(service: Awaited<ReturnType<typeof guardedService>>): Promise<number> {
  const counts = await service.queues.byName.intake.getJobCounts("waiting", "delayed", "active", "completed", "failed", "prioritized");
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

describe("credentials on the FHIR hook are checked before anything is queued", () => {
  it("refuses missing, wrong, truncated and mis-schemed bearer tokens and accepts the right one", async () => {
    const service = await guardedService();
    const body = appointment("a-bearer");
    const put = (headers: Record<string, string>) => service.app.request("/hooks/fhir/bearer/Appointment/a-bearer", { method: "PUT", headers: { "content-type": "application/fhir+json", ...headers }, body });
    const refused: [string, Record<string, string>][] = [
      ["missing", {}],
      ["empty", { authorization: "" }],
      ["wrong", { authorization: "Bearer bearer-token-0123456789abcdeX" }],
      ["truncated", { authorization: `Bearer ${bearerToken.slice(0, -1)}` }],
      ["extended", { authorization: `Bearer ${bearerToken}x` }],
      ["scheme only", { authorization: "Bearer " }],
      ["basic scheme", { authorization: `Basic ${Buffer.from(`user:${bearerToken}`).toString("base64")}` }],
      ["token without scheme", { authorization: bearerToken }],
      ["token in another header", { "x-api-key": bearerToken }],
      ["another source's secret", { authorization: `Bearer ${headerSecret}` }],
    ];
    for (const [what, headers] of refused) await expectRefused(await put(headers), `bearer ${what}`);
    expect(await queuedIntakeJobs(service)).toBe(0);
    expect((await put({ authorization: `Bearer ${bearerToken}` })).status).toBe(202);
    expect(await queuedIntakeJobs(service)).toBe(1);
  });

  it("refuses a missing, wrong or truncated shared-secret header", async () => {
    const service = await guardedService();
    const body = appointment("a-header");
    const put = (headers: Record<string, string>) => service.app.request("/hooks/fhir/header/Appointment/a-header", { method: "PUT", headers: { "content-type": "application/fhir+json", ...headers }, body });
    const refused: [string, Record<string, string>][] = [
      ["missing", {}],
      ["wrong", { "x-api-key": "header-secret-0123456789abcdeX" }],
      ["truncated", { "x-api-key": headerSecret.slice(0, 8) }],
      ["empty", { "x-api-key": "" }],
      ["as a bearer token", { authorization: `Bearer ${headerSecret}` }],
    ];
    for (const [what, headers] of refused) await expectRefused(await put(headers), `header ${what}`);
    expect(await queuedIntakeJobs(service)).toBe(0);
    expect((await put({ "x-api-key": headerSecret })).status).toBe(202);
  });

  it("refuses a missing, wrong, truncated or replayed HMAC signature", async () => {
    const service = await guardedService();
    const body = appointment("a-hmac", "2");
    const other = appointment("a-hmac", "1");
    const put = (headers: Record<string, string>) => service.app.request("/hooks/fhir/hmac/Appointment/a-hmac", { method: "PUT", headers: { "content-type": "application/fhir+json", ...headers }, body });
    const refused: [string, Record<string, string>][] = [
      ["missing", {}],
      ["wrong secret", { "x-signature": hmacHex(body, "not-the-hmac-secret-at-all") }],
      ["truncated", { "x-signature": hmacHex(body).slice(0, 63) }],
      ["replayed over another body", { "x-signature": hmacHex(other) }],
      ["replayed over the body plus a space", { "x-signature": hmacHex(`${body} `) }],
      ["base64 instead of hex", { "x-signature": createHmac("sha256", hmacSecret).update(body).digest("base64") }],
      ["sha1", { "x-signature": createHmac("sha1", hmacSecret).update(body).digest("hex") }],
      ["the secret itself", { "x-signature": hmacSecret }],
    ];
    for (const [what, headers] of refused) await expectRefused(await put(headers), `hmac ${what}`);
    expect(await queuedIntakeJobs(service)).toBe(0);
    expect((await put({ "x-signature": hmacHex(body) })).status).toBe(202);
    expect((await put({ "x-signature": `sha256=${hmacHex(body)}` })).status).toBe(202);
  });

  it("accepts a source without credentials only over loopback", async () => {
    const service = await guardedService();
    const body = appointment("a-open");
    const init = { method: "PUT", headers: { "content-type": "application/fhir+json" }, body };
    await expectRefused(await service.app.request("/hooks/fhir/open/Appointment/a-open", init, fromRemote("203.0.113.7", body)), "none from a remote address");
    await expectRefused(await service.app.request("/hooks/fhir/open/Appointment/a-open", init, fromRemote("::ffff:10.0.0.8", body)), "none from a mapped remote address");
    expect((await service.app.request("/hooks/fhir/open/Appointment/a-open", init, fromRemote("127.0.0.1", body))).status).toBe(202);
  });

  it.skipIf(lanAddress === undefined)("refuses a source without credentials over a real socket on this machine's LAN address", async () => {
    const service = await guardedService();
    const init = { method: "PUT", headers: { "content-type": "application/fhir+json" }, body: appointment("a-open-lan") };
    await expectRefused(await fetch(`${await listen(service.app, lanAddress!)}/hooks/fhir/open/Appointment/a-open-lan`, init), "none over the LAN address");
    expect((await fetch(`${await listen(service.app, "127.0.0.1")}/hooks/fhir/open/Appointment/a-open-lan`, init)).status).toBe(202);
  });
});

describe("WhatsApp webhooks must carry Meta's signature over the exact bytes", () => {
  it("refuses missing, wrong, truncated and replayed X-Hub-Signature-256 and queues nothing", async () => {
    const service = await guardedService();
    const status = (id: string) =>
      JSON.stringify({
        object: "whatsapp_business_account",
        entry: [{ id: "1", changes: [{ field: "messages", value: { messaging_product: "whatsapp", metadata: { phone_number_id: "200000000000002" }, statuses: [{ id, status: "delivered", timestamp: "1767000000", recipient_id: "12025550123" }] } }] }],
      });
    const body = status("wamid.AAA");
    const post = (headers: Record<string, string>) => service.app.request("/hooks/whatsapp", { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
    const good = signWebhook(body, appSecret);
    const refused: [string, Record<string, string>][] = [
      ["missing", {}],
      ["wrong secret", { "x-hub-signature-256": signWebhook(body, "some-other-app-secret") }],
      ["truncated", { "x-hub-signature-256": good.slice(0, -2) }],
      ["without the sha256= prefix", { "x-hub-signature-256": good.slice("sha256=".length) }],
      ["sha1 style", { "x-hub-signature-256": `sha1=${createHmac("sha1", appSecret).update(body).digest("hex")}` }],
      ["replayed over another body", { "x-hub-signature-256": signWebhook(status("wamid.BBB"), appSecret) }],
      ["in the legacy header", { "x-hub-signature": good }],
      ["the app secret itself", { "x-hub-signature-256": appSecret }],
    ];
    for (const [what, headers] of refused) await expectRefused(await post(headers), `webhook ${what}`);
    const jobs = await service.queues.byName.webhook.getJobCounts("waiting", "delayed", "active", "completed");
    expect(Object.values(jobs).reduce((a, b) => a + b, 0)).toBe(0);
    const ok = await post({ "x-hub-signature-256": good });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ accepted: 1 });
  });

  it("without an app secret, accepts webhooks only over loopback", async () => {
    const service = await startTestService({ role: "api", config: { sources: { open: { auth: { type: "none" } } } } });
    const body = JSON.stringify({ object: "whatsapp_business_account", entry: [] });
    const init = { method: "POST", headers: { "content-type": "application/json" }, body };
    await expectRefused(await service.app.request("/hooks/whatsapp", init, fromRemote("198.51.100.20", body)), "unsigned webhook from a remote address");
    expect((await service.app.request("/hooks/whatsapp", init, fromRemote("::1", body))).status).toBe(200);
    if (lanAddress !== undefined) await expectRefused(await fetch(`${await listen(service.app, lanAddress)}/hooks/whatsapp`, init), "unsigned webhook over the LAN address");
  });

  it("answers the verification handshake only with the right verify token", async () => {
    const service = await guardedService({ whatsapp: { appSecret, verifyToken: "verify-token-0123456789" } });
    const wrong = await service.app.request("/hooks/whatsapp?hub.mode=subscribe&hub.verify_token=verify-token-012345678X&hub.challenge=1158201444");
    await expectRefused(wrong, "wrong verify token", [403]);
    const ok = await service.app.request("/hooks/whatsapp?hub.mode=subscribe&hub.verify_token=verify-token-0123456789&hub.challenge=1158201444");
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe("1158201444");
  });
});

describe("the admin API is never open to a stranger", () => {
  it("refuses a missing, wrong, truncated or mis-schemed ADMIN_TOKEN on every admin route", async () => {
    const service = await guardedService();
    const routes: [string, string][] = [
      ["GET", "/admin/outbox"],
      ["GET", "/admin/notifications"],
      ["GET", "/admin/notifications/abc"],
      ["GET", "/admin/dlq"],
      ["POST", "/admin/dlq/replay"],
      ["GET", "/admin/sender"],
      ["POST", "/admin/sender/resume"],
      ["POST", "/admin/preview"],
    ];
    const bad: [string, Record<string, string>][] = [
      ["missing", {}],
      ["wrong", { authorization: "Bearer admin-token-0123456789abcdeX" }],
      ["truncated", { authorization: `Bearer ${adminToken.slice(0, -1)}` }],
      ["basic", { authorization: `Basic ${Buffer.from(`admin:${adminToken}`).toString("base64")}` }],
      ["no scheme", { authorization: adminToken }],
      ["a hook token", { authorization: `Bearer ${bearerToken}` }],
    ];
    for (const [method, path] of routes) {
      for (const [what, headers] of bad) {
        // Even from loopback: a configured token is always required.
        await expectRefused(await service.app.request(path, { method, headers: { "content-type": "application/json", ...headers }, body: method === "POST" ? "{}" : null }), `${method} ${path} ${what}`);
      }
      await expectRefused(await service.app.request(`${path}?token=${adminToken}`, { method, body: method === "POST" ? "{}" : null }), `${method} ${path} token in query`);
    }
    const ok = await service.app.request("/admin/sender", { headers: { authorization: `Bearer ${adminToken}` } });
    expect(ok.status).toBe(200);
  });

  it("without ADMIN_TOKEN, answers loopback callers and refuses every other address", async () => {
    const service = await startTestService({ role: "api" });
    for (const address of ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]) {
      expect((await service.app.request("/admin/sender", {}, fromRemote(address))).status, address).toBe(200);
    }
    for (const address of ["10.0.0.5", "192.168.1.20", "203.0.113.9", "::ffff:10.0.0.5", "fe80::1", "2001:db8::1", "", "0.0.0.0", "::"]) {
      await expectRefused(await service.app.request("/admin/sender", {}, fromRemote(address)), `admin from ${address || "(no address)"}`, [403]);
    }
  });

  it("without ADMIN_TOKEN, a real socket on 127.0.0.1 gets in and one on this machine's LAN address does not", async () => {
    const service = await startTestService({ role: "api" });
    expect((await fetch(`${await listen(service.app, "127.0.0.1")}/admin/sender`)).status).toBe(200);
    if (lanAddress === undefined) return;
    const lan = await listen(service.app, lanAddress);
    await expectRefused(await fetch(`${lan}/admin/sender`), `admin over ${lanAddress}`, [403]);
    // Health stays reachable there; only the admin API is closed.
    expect((await fetch(`${lan}/healthz`)).status).toBe(200);
  });
});
