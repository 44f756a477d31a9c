import { describe, expect, it } from "vitest";
import { confirmationFields } from "../fixtures/delivery-record.js";
import { consoleWorld } from "./support.js";

describe("a notification's page: why (not) sent", () => {
  it("says in plain words why it was not sent, step by step, with the rule and the resource", async () => {
    const { app, ledger } = consoleWorld();
    const f = confirmationFields(1, { patientRef: "Patient/p1" });
    await ledger.create(f);
    await ledger.set(f.deliveryId, { reason: "missing-value", reasonDetail: "a slot the template needs had no value", missingSlot: "locationLabel" });
    await ledger.append(f.deliveryId, { state: "not-done", at: "2026-11-25T09:59:01.000Z" });

    const res = await app.request(`/console/notifications/${f.deliveryId}`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("Not sent: a value the template needs was missing (slot locationLabel).");
    expect(html).toContain("a slot the template needs had no value");
    expect(html).toContain("appointment-booked");
    expect(html).toContain("Appointment/a1");
    expect(html).toContain('data-step="not-done"');
    expect(html).toContain("not written yet");
  });

  it("explains a WhatsApp failure by its code and links the Communication", async () => {
    const { app, ledger } = consoleWorld();
    const f = confirmationFields(2);
    await ledger.create(f);
    await ledger.recordAccepted(f, "wamid.HBgLMTIwMjU1NTAxMjMVAgARGBI", { state: "accepted", at: "2026-11-25T10:00:02.000Z" }, Date.parse("2026-11-26T10:00:00.000Z"));
    await ledger.applyStatus(f.deliveryId, "wamid.HBgLMTIwMjU1NTAxMjMVAgARGBI", { state: "failed", at: "2026-11-25T10:00:09.000Z", code: 131026 });
    await ledger.set(f.deliveryId, { communicationId: "c-42" });

    const html = await (await app.request(`/console/notifications/${f.deliveryId}`)).text();
    expect(html).toContain("WhatsApp accepted it but could not deliver it (WhatsApp code 131026: WhatsApp could not deliver to this recipient).");
    expect(html).toContain('href="https://fhir.example.org/fhir/Communication/c-42"');
    expect(html.indexOf('data-step="accepted"')).toBeLessThan(html.indexOf('data-step="failed"'));
  });

  it("answers an unknown id with a 404 page", async () => {
    const { app } = consoleWorld();
    const res = await app.request("/console/notifications/dlv_nope");
    expect(res.status).toBe(404);
    expect(await res.text()).toContain("No notification with this id");
  });
});
