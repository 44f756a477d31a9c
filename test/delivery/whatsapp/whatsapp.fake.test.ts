import { describe, expect, it } from "vitest";
import { SendError } from "../../../src/delivery/whatsapp/whatsapp.port.js";
import type { TemplateMessage } from "../../../src/shared/template-message.js";
import { FakeWhatsApp } from "../../fakes/whatsapp.fake.js";

const msg = (to: string): TemplateMessage => ({ to, templateName: "pickup_ready_v1", languageCode: "es", bodyParameters: ["Alex"], buttons: [], callbackData: `cb-${to}` });

describe("FakeWhatsApp", () => {
  it("throws scripted failures in order, per recipient first, and records only accepted messages", async () => {
    const fake = new FakeWhatsApp();
    fake.failFor.set("+34600000001", [new SendError("recipient", "undeliverable", { code: 131026 })]);
    fake.failNext.push(new SendError("rate-limited", "throttled", { code: 130429, retryAfterMs: 1000 }));

    await expect(fake.sendTemplate(msg("+34600000001"))).rejects.toMatchObject({ failure: "recipient" });
    await expect(fake.sendTemplate(msg("+34600000002"))).rejects.toMatchObject({ failure: "rate-limited" });
    await expect(fake.sendTemplate(msg("+34600000002"))).resolves.toEqual({ wamid: "wamid.fake-1", waId: "34600000002", messageStatus: "accepted" });
    expect(fake.attempts).toHaveLength(3);
    expect(fake.sentTo("+34600000002")).toBe(1);
  });

  it("lets a test wait for the next accepted message without sleeping", async () => {
    const fake = new FakeWhatsApp();
    fake.nextStatus = "held_for_quality_assessment";
    const next = fake.nextSent();
    const result = await fake.sendTemplate(msg("+34600000003"));
    await expect(next).resolves.toMatchObject({ to: "+34600000003" });
    expect(result.messageStatus).toBe("held_for_quality_assessment");
  });
});
