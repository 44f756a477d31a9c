import { describe, expect, it } from "vitest";
import { loadFixture } from "../fixtures/fhir/load-fixture.js";
import { previewResource } from "../../src/delivery/preview.js";
import { bookingTime, testFhir, testMapping } from "../mapping/site.js";

describe("previewResource", () => {
  it("lists every rule for the type with its decision and the exact Cloud API request for messages", async () => {
    const fhir = testFhir();
    const result = await previewResource(testMapping(), loadFixture("Appointment", "booked-en-chicago"), fhir, bookingTime);
    expect(result.resource).toBe("Appointment/apt-7781");
    expect(result.rulesHash).toMatch(/^[0-9a-f]{64}$/);
    expect(result.rules.map((r) => [r.ruleId, r.fired])).toEqual([
      ["appointment-booked", true],
      ["appointment-cancelled", false],
      ["appointment-fulfilled", false],
      ["appointment-reminder", true],
    ]);
    const booked = result.rules[0];
    if (booked?.fired !== true || booked.action !== "send" || !booked.outcome.ok) throw new Error("expected a rendered message");
    expect(booked.outcome.request).toMatchObject({
      messaging_product: "whatsapp",
      to: "12025550143",
      type: "template",
      template: {
        name: "appointment_confirmation_v1",
        language: { code: "en_US" },
        components: [{ type: "body", parameters: [{ type: "text", text: "Jordy" }, { type: "text", text: "Riverside Clinic, 12 Main St" }, { type: "text", text: "Tuesday, March 10" }, { type: "text", text: "9:30 AM" }] }],
      },
    });
    const reminder = result.rules[3];
    expect(reminder).toMatchObject({ fired: true, action: "send", sendAt: "2026-03-09T14:30:00.000Z" });
    expect(result.rules[1]).toEqual({ ruleId: "appointment-cancelled", fired: false, why: "trigger.when is false" });
    // Preview reads, never writes.
    expect(fhir.calls.every((c) => c.startsWith("read ") || c.startsWith("search "))).toBe(true);
  });

  it("shows the not-done reason instead of a request when the message would be blocked", async () => {
    const fhir = testFhir();
    fhir.remove("Consent", "cons-wa-1001");
    const result = await previewResource(testMapping(), loadFixture("Appointment", "booked-en-chicago"), fhir, bookingTime);
    expect(result.rules[0]).toMatchObject({ fired: true, action: "send", outcome: { ok: false, reason: "no-consent" } });
  });

  it("shows cancellations with the rules they cancel", async () => {
    const result = await previewResource(testMapping(), loadFixture("Appointment", "cancelled-en-chicago"), testFhir(), bookingTime);
    expect(result.rules.find((r) => r.ruleId === "appointment-cancelled")).toEqual({
      ruleId: "appointment-cancelled",
      fired: true,
      action: "cancel-pending",
      why: "cancels pending deliveries of appointment-reminder, appointment-booked",
      cancels: ["appointment-reminder", "appointment-booked"],
    });
  });
});
