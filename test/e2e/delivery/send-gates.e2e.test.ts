import { describe, expect, it } from "vitest";
import { createTemplateHolds } from "../../../src/delivery/template-holds.js";
import { templateHoldRecheckMs } from "../../../src/delivery/send.worker.js";
import { readFileSync } from "node:fs";
import { signWebhook } from "../../fakes/graph-api.server.js";
import { appSecret, startDeliveryService, startIn, type DeliveryKit } from "./delivery-kit.js";

/** Books one appointment for a fresh patient and returns the confirmation's delivery id. */
async function bookConfirmation(kit: DeliveryKit, phone: string): Promise<string> {
  const patientId = await kit.addPatient(phone);
  const appt = await kit.book(patientId, startIn(30));
  return (await kit.delivery("appointment-booked", appt.id)).deliveryId;
}

const events = (kit: DeliveryKit) => kit.service.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>);

describe("the send worker honours template holds shared through Redis", () => {
  it("ends a message whose template Meta disabled as not-done template-held, and the Communication says why", async () => {
    const kit = await startDeliveryService();
    const holds = createTemplateHolds(kit.service.redis, kit.service.config.redis.prefix);
    await holds.apply("appointment_confirmation_v1", "en_US", "status", { code: "disabled", since: new Date().toISOString() }, new Date().toISOString());
    const phone = "+12025550161";
    const id = await bookConfirmation(kit, phone);

    const record = await kit.until(id, "the confirmation not-done", (r) => r.state === "not-done");
    expect(record.reason).toBe("template-held");
    expect(record.templateHold).toBe("disabled");
    expect(kit.graph.sentTo(phone)).toBe(0);
    const c = await kit.communication(id, (x) => x.status === "not-done");
    expect(c.statusReason?.text).toBe("WhatsApp disabled the message template");
  });

  it("ends a message whose template was recategorised out of UTILITY even while its status is APPROVED", async () => {
    const kit = await startDeliveryService();
    const holds = createTemplateHolds(kit.service.redis, kit.service.config.redis.prefix);
    const at = new Date().toISOString();
    await holds.apply("appointment_confirmation_v1", "en_US", "category", { code: "not-utility", since: at }, at);
    // A later APPROVED status lifts a status hold only; the category hold stays.
    await holds.apply("appointment_confirmation_v1", "en_US", "status", undefined, new Date(Date.now() + 1000).toISOString());
    const id = await bookConfirmation(kit, "+12025550162");
    const record = await kit.until(id, "the confirmation not-done", (r) => r.state === "not-done");
    expect(record.templateHold).toBe("not-utility");
  });

  it("defers a message whose template is paused, without using an attempt, and sends it once the template is approved again", async () => {
    const kit = await startDeliveryService();
    const holds = createTemplateHolds(kit.service.redis, kit.service.config.redis.prefix);
    const pausedAt = new Date();
    await holds.apply("appointment_confirmation_v1", "en_US", "status", { code: "paused", since: pausedAt.toISOString() }, pausedAt.toISOString());
    const phone = "+12025550163";
    const id = await bookConfirmation(kit, phone);

    const job = await kit.delayed(id, () => true, templateHoldRecheckMs - 60_000);
    expect(job.delay).toBeLessThanOrEqual(templateHoldRecheckMs);
    expect(kit.graph.sentTo(phone)).toBe(0);
    expect(events(kit).some((e) => e.event === "template-held" && e.hold === "paused")).toBe(true);

    await holds.apply("appointment_confirmation_v1", "en_US", "status", undefined, new Date(pausedAt.getTime() + 1000).toISOString());
    await job.promote();
    await kit.until(id, "the confirmation accepted", (r) => r.state === "accepted");
    expect(kit.graph.sentTo(phone)).toBe(1);
  });

  it("ignores a hold event older than the last one applied (webhooks arrive out of order)", async () => {
    const kit = await startDeliveryService();
    const holds = createTemplateHolds(kit.service.redis, kit.service.config.redis.prefix);
    const t0 = Date.now();
    expect(await holds.apply("appointment_confirmation_v1", "en_US", "status", undefined, new Date(t0 + 5000).toISOString())).toBe("unchanged");
    expect(await holds.apply("appointment_confirmation_v1", "en_US", "status", { code: "paused", since: new Date(t0).toISOString() }, new Date(t0).toISOString())).toBe("stale");
    expect(await holds.heldFor("appointment_confirmation_v1", "en_US")).toBeUndefined();
  });
});

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/whatsapp/${name}`, import.meta.url), "utf8");

/** A signed WABA webhook, posted the way Meta does. */
async function postWebhook(kit: DeliveryKit, body: string): Promise<Response> {
  return fetch(`${kit.service.url}/hooks/whatsapp`, { method: "POST", headers: { "content-type": "application/json", "x-hub-signature-256": signWebhook(body, appSecret) }, body });
}

const approvedAt = (time: number) =>
  JSON.stringify({
    object: "whatsapp_business_account",
    entry: [{ id: "100000000000001", time, changes: [{ field: "message_template_status_update", value: { event: "APPROVED", message_template_id: 123456790, message_template_name: "appointment_confirmation_v1", message_template_language: "en_US", reason: "NONE", message_template_category: "UTILITY" } }] }],
  });

describe("Meta's template webhooks hold and release templates for every worker", () => {
  it("holds a template recategorised to MARKETING at once: the next message ends not-done, with an alert", async () => {
    const kit = await startDeliveryService();
    expect((await postWebhook(kit, fixture("template-category-marketing.json"))).status).toBe(200);
    const id = await bookConfirmation(kit, "+12025550164");
    const record = await kit.until(id, "the confirmation not-done", (r) => r.state === "not-done");
    expect(record).toMatchObject({ reason: "template-held", templateHold: "not-utility" });
    const c = await kit.communication(id, (x) => x.status === "not-done");
    expect(c.statusReason?.text).toMatch(/recategorised/);
    expect(events(kit).find((e) => e.event === "template-held")).toMatchObject({ template: "appointment_confirmation_v1", language: "en_US", hold: "not-utility" });
    expect(await kit.service.metrics.registry.metrics()).toMatch(/fhir_notify_template_alerts_total\{template="appointment_confirmation_v1",kind="held"\} 1/);
  });

  it("defers sends of a paused template and sends them after a later APPROVED; an older APPROVED does not lift the pause", async () => {
    const kit = await startDeliveryService();
    await postWebhook(kit, fixture("template-status-paused.json"));
    // An APPROVED from before the pause (Meta does not order webhooks): stale, ignored.
    await postWebhook(kit, approvedAt(1760431900));
    const phone = "+12025550165";
    const id = await bookConfirmation(kit, phone);
    const job = await kit.delayed(id, () => true, templateHoldRecheckMs - 60_000);
    expect(events(kit).some((e) => e.event === "template-event-stale")).toBe(true);

    await postWebhook(kit, approvedAt(1760432000 + 3 * 3600));
    expect(events(kit).find((e) => e.event === "template-released")).toMatchObject({ template: "appointment_confirmation_v1" });
    await job.promote();
    await kit.until(id, "the confirmation accepted", (r) => r.state === "accepted");
    expect(kit.graph.sentTo(phone)).toBe(1);
  });

  it("only alerts on an advance recategorisation notice and on a quality drop: messages still go", async () => {
    const kit = await startDeliveryService();
    await postWebhook(kit, fixture("template-category-pending.json"));
    await postWebhook(kit, fixture("template-quality-red.json"));
    const phone = "+12025550166";
    const id = await bookConfirmation(kit, phone);
    await kit.until(id, "the confirmation accepted", (r) => r.state === "accepted");
    expect(events(kit).find((e) => e.event === "template-category-pending")).toMatchObject({ correctCategory: "MARKETING" });
    expect(events(kit).find((e) => e.event === "template-quality")).toMatchObject({ score: "RED" });
  });

  it("answers 200 and ignores a template webhook it cannot read", async () => {
    const kit = await startDeliveryService();
    const body = JSON.stringify({ object: "whatsapp_business_account", entry: [{ id: "1", changes: [{ field: "template_category_update", value: { new_category: 7 } }] }] });
    const res = await postWebhook(kit, body);
    expect(res.status).toBe(200);
    expect(await kit.service.metrics.registry.metrics()).toMatch(/fhir_notify_webhook_events_total\{kind="ignored"\} 1/);
  });
});

describe("the daily unique-recipient budget", () => {
  it("sends to recipients within the budget, defers a new one past it by up to 24 h, and alerts once at the alert share", async () => {
    const kit = await startDeliveryService({ config: { delivery: { retries: { attempts: 3, backoffMs: 50 }, rateLimits: { perRecipientSeconds: 0.05 }, messagingBudget: { uniqueRecipientsPer24h: 2, alertAtRatio: 0.5 } } } });
    const [a, b, c] = ["+12025550171", "+12025550172", "+12025550173"];
    const first = await bookConfirmation(kit, a);
    await kit.until(first, "the first accepted", (r) => r.state === "accepted");
    const second = await bookConfirmation(kit, b);
    await kit.until(second, "the second accepted", (r) => r.state === "accepted");

    const third = await bookConfirmation(kit, c);
    const job = await kit.delayed(third, () => true, 23 * 3_600_000);
    expect(job.delay).toBeLessThanOrEqual(24 * 3_600_000);
    expect(kit.graph.sentTo(c)).toBe(0);
    expect((await kit.ledger.get(third))?.state).toBe("queued");

    const alerts = events(kit).filter((e) => e.event === "messaging-budget-alert");
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ used: 1, limit: 2 });
    expect(events(kit).some((e) => e.event === "messaging-budget-deferred")).toBe(true);
    const text = await kit.service.metrics.registry.metrics();
    expect(text).toMatch(/fhir_notify_messaging_budget_alerts_total 1/);
    expect(text).toMatch(/fhir_notify_sends_deferred_total\{reason="messaging-budget"\} 1/);
    // Never a number in a log line.
    expect(kit.service.logs.text()).not.toContain("2025550173");
  });

  it("does not count a recipient twice within the window", async () => {
    const kit = await startDeliveryService({ config: { delivery: { retries: { attempts: 3, backoffMs: 50 }, rateLimits: { perRecipientSeconds: 0.05 }, messagingBudget: { uniqueRecipientsPer24h: 1 } } } });
    const phone = "+12025550174";
    const patientId = await kit.addPatient(phone);
    const one = await kit.book(patientId, startIn(30));
    const two = await kit.book(patientId, startIn(50));
    for (const appt of [one, two]) {
      const id = (await kit.delivery("appointment-booked", appt.id)).deliveryId;
      await kit.until(id, "accepted", (r) => r.state === "accepted");
    }
    expect(kit.graph.sentTo(phone)).toBe(2);
  });
});
