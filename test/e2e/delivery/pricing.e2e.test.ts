import { describe, expect, it } from "vitest";
import { waitFor } from "../../support/wait-for.js";
import { startDeliveryService, startIn, type DeliveryKit } from "./delivery-kit.js";

/** Books one appointment for a fresh patient and waits until WhatsApp accepted the confirmation. */
async function acceptedConfirmation(kit: DeliveryKit, phone: string): Promise<{ deliveryId: string; wamid: string }> {
  const patientId = await kit.addPatient(phone);
  const appt = await kit.book(patientId, startIn(30));
  const { deliveryId } = await kit.delivery("appointment-booked", appt.id);
  const r = await kit.until(deliveryId, "accepted", (x) => x.state === "accepted");
  return { deliveryId, wamid: r.wamid! };
}

const ts = () => Math.floor(Date.now() / 1000);
const pricingExt = "https://fhir-notify.dev/fhir/StructureDefinition/pricing";

describe("pricing in status webhooks (statuses[].pricing: billable, pricing_model, type, category)", () => {
  it("records category and billability on the delivery and the Communication, counting each message once per template", async () => {
    const kit = await startDeliveryService();
    const { deliveryId, wamid } = await acceptedConfirmation(kit, "+12025550181");
    const pricing = { billable: true, pricing_model: "PMP", type: "regular", category: "utility" };
    // Meta repeats the price on one of delivered/read; a webhook may also come twice.
    for (const status of ["sent", "delivered", "delivered"] as const) expect((await kit.postStatuses([{ wamid, status, timestamp: ts(), pricing }])).status).toBe(200);

    const r = await kit.until(deliveryId, "delivered", (x) => x.state === "delivered");
    expect(r.pricing).toEqual({ category: "utility", model: "PMP", type: "regular", billable: true });
    const c = await kit.communication(deliveryId, (x) => x.status === "completed");
    expect(c.extension?.find((e) => e.url === pricingExt)?.extension).toEqual([
      { url: "category", valueCode: "utility" },
      { url: "model", valueCode: "PMP" },
      { url: "type", valueCode: "regular" },
      { url: "billable", valueBoolean: true },
    ]);
    const text = await kit.service.metrics.registry.metrics();
    expect(text).toMatch(/fhir_notify_priced_messages_total\{template="appointment_confirmation_v1",category="utility",billable="true"\} 1\n/);
    expect(text).not.toMatch(/kind="billed-as-marketing"/);
  });

  it("alerts when a utility template is billed as marketing, and takes billability from type when billable is gone", async () => {
    const kit = await startDeliveryService();
    const { deliveryId, wamid } = await acceptedConfirmation(kit, "+12025550182");
    await kit.postStatuses([{ wamid, status: "sent", timestamp: ts(), pricing: { pricing_model: "PMP", type: "regular", category: "marketing", an_unknown_field: 1 } }]);
    await kit.until(deliveryId, "sent", (x) => x.state === "sent" && x.pricing !== undefined);

    // The worker counts and alerts just after the ledger took the status: wait for the counter.
    const text = await waitFor("the billed-as-marketing alert counted", async () => {
      const t = await kit.service.metrics.registry.metrics();
      return /kind="billed-as-marketing"/.test(t) ? t : undefined;
    });
    expect(text).toMatch(/fhir_notify_template_alerts_total\{template="appointment_confirmation_v1",kind="billed-as-marketing"\} 1/);
    expect(text).toMatch(/fhir_notify_priced_messages_total\{template="appointment_confirmation_v1",category="marketing",billable="true"\} 1/);
    const alert = kit.service.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === "template-billed-as-marketing");
    expect(alert).toMatchObject({ template: "appointment_confirmation_v1", deliveryId });
  });

  it("keeps a status whose pricing it cannot read, without the price", async () => {
    const kit = await startDeliveryService();
    const { deliveryId, wamid } = await acceptedConfirmation(kit, "+12025550183");
    await kit.postStatuses([{ wamid, status: "sent", timestamp: ts(), pricing: { billable: "yes", category: 7 } }]);
    const r = await kit.until(deliveryId, "sent", (x) => x.state === "sent");
    expect(r.pricing).toBeUndefined();
  });
});
