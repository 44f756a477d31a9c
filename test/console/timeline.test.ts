import { describe, expect, it } from "vitest";
import { confirmationFields } from "../fixtures/delivery-record.js";
import { consoleWorld } from "./support.js";

const rowIds = (html: string) => [...html.matchAll(/data-delivery="([^"]+)"/g)].map((m) => m[1]);

describe("the console timeline", () => {
  it("lists notifications newest first with counts per state, and filters by state, reason and rule", async () => {
    const { app, ledger } = consoleWorld();
    const booked = confirmationFields(1, { createdAt: "2026-11-25T09:00:00.000Z" });
    const declined = confirmationFields(2, { createdAt: "2026-11-25T09:05:00.000Z" });
    const reminder = confirmationFields(3, { createdAt: "2026-11-25T09:10:00.000Z", deliveryId: "dlv_ehr_appointment-reminder_Appointment_a3_0123456789abcdef", ruleId: "appointment-reminder", templateName: "appointment_reminder_v1", category: "reminder" });
    for (const f of [booked, declined, reminder]) await ledger.create(f);
    await ledger.set(declined.deliveryId, { reason: "no-consent", reasonDetail: "no active Consent for WhatsApp" });
    await ledger.append(declined.deliveryId, { state: "not-done", at: "2026-11-25T09:05:01.000Z" });

    const all = await app.request("/console");
    expect(all.status).toBe(200);
    expect(all.headers.get("content-security-policy")).toContain("default-src 'none'");
    const html = await all.text();
    expect(rowIds(html)).toEqual([reminder.deliveryId, declined.deliveryId, booked.deliveryId]);
    expect(html).toMatch(/data-state="not-done">Not sent<b>1<\/b>/);
    expect(html).toMatch(/data-state="waiting">Waiting<b>2<\/b>/);
    expect(html).not.toContain("<script");

    expect(rowIds(await (await app.request("/console?state=not-done")).text())).toEqual([declined.deliveryId]);
    expect(rowIds(await (await app.request("/console?reason=no-consent")).text())).toEqual([declined.deliveryId]);
    expect(rowIds(await (await app.request("/console?rule=appointment-reminder&state=")).text())).toEqual([reminder.deliveryId]);
    expect(rowIds(await (await app.request("/console?from=2026-11-25T09:04&to=2026-11-25T09:05")).text())).toEqual([declined.deliveryId]);
  });

  it("pages with an Older link that continues where the page ended", async () => {
    const { app, ledger } = consoleWorld();
    for (let n = 0; n < 55; n++) await ledger.create(confirmationFields(n, { createdAt: new Date(Date.UTC(2026, 10, 25, 9, 0, n)).toISOString() }));
    const first = await (await app.request("/console")).text();
    expect(rowIds(first)).toHaveLength(50);
    const older = /href="([^"]+)" rel="next"/.exec(first)?.[1]?.replaceAll("&amp;", "&");
    expect(older).toBeDefined();
    const second = await (await app.request(older!)).text();
    expect(rowIds(second)).toHaveLength(5);
    expect(new Set([...rowIds(first), ...rowIds(second)]).size).toBe(55);
    expect(second).not.toContain('rel="next"');
  });

  it("answers a bad filter with a plain 400 page naming the filter", async () => {
    const { app } = consoleWorld();
    const res = await app.request("/console?state=lost");
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("The filter &quot;state&quot; is not valid");
    expect((await app.request("/console?after=bm90LWpzb24")).status).toBe(400);
  });
});

describe("the console's guard", () => {
  it("marks the session cookie Secure behind a TLS-terminating proxy (PUBLIC_URL is https, the request reaches us as http)", async () => {
    const { app } = consoleWorld({ adminToken: "console-test-admin-token-0123456789", publicUrl: "https://notify.hospital.example" });
    const login = await app.request("http://10.0.0.7:8080/console/login", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: "https://notify.hospital.example" },
      body: "token=console-test-admin-token-0123456789",
    });
    expect(login.status).toBe(303);
    expect(login.headers.get("set-cookie")).toMatch(/; Secure/);
  });

  it("with ADMIN_TOKEN set, a browser is sent to sign in, and the token sets an HttpOnly SameSite=Strict cookie", async () => {
    const { app } = consoleWorld({ adminToken: "console-test-admin-token-0123456789" });
    const anon = await app.request("/console");
    expect(anon.status).toBe(303);
    expect(anon.headers.get("location")).toBe("/console/login");

    const wrong = await app.request("/console/login", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "same-origin" }, body: "token=nope" });
    expect(wrong.status).toBe(401);
    const login = await app.request("/console/login", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "same-origin" }, body: "token=console-test-admin-token-0123456789" });
    expect(login.status).toBe(303);
    const cookie = login.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toContain("console-test-admin-token-0123456789");

    // Served over plain http with no https PUBLIC_URL: the cookie cannot be Secure.
    expect(cookie).not.toMatch(/Secure/);
    const session = cookie.split(";")[0]!;
    expect((await app.request("/console", { headers: { cookie: session } })).status).toBe(200);
    expect((await app.request("/console", { headers: { authorization: "Bearer console-test-admin-token-0123456789" } })).status).toBe(200);
    expect((await app.request("/console", { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
  });

  it("refuses a cross-site login form post", async () => {
    const { app } = consoleWorld({ adminToken: "console-test-admin-token-0123456789" });
    const res = await app.request("http://127.0.0.1:8080/console/login", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", origin: "https://evil.example" }, body: "token=console-test-admin-token-0123456789" });
    expect(res.status).toBe(403);
  });
});
