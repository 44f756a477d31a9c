import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { AppError } from "../../../src/shared/app-error.js";
import { hasValidSignature } from "../../../src/delivery/whatsapp/webhook-signature.js";
import { maxWebhookBytes, normaliseKeyword, parseWebhook } from "../../../src/delivery/whatsapp/webhook.schema.js";
import { buildInboundWebhook, buildStatusWebhook, signWebhook } from "../../fakes/graph-api.server.js";

const own = "200000000000002";
const wamid = "wamid.HBgLMTU1NTc2NTQzMjEVAgARGBI5QTlFQUZDRTAwRjQ0NUY4QzcA";
const fixture = (name: string) => readFileSync(new URL(`../../fixtures/whatsapp/${name}`, import.meta.url), "utf8");

function invalid(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error("expected an AppError");
}

describe("parseWebhook: statuses", () => {
  const utilityPrice = { pricing: { category: "utility", model: "PMP", type: "regular", billable: true } };
  it.each([
    ["status-sent.json", "sent", "2025-10-14T08:20:00.000Z", utilityPrice],
    ["status-delivered.json", "delivered", "2025-10-14T08:20:04.000Z", {}],
    ["status-read.json", "read", "2025-10-14T08:40:10.000Z", utilityPrice],
  ] as const)("reads %s as a %s update with an ISO timestamp, our callback data and the price when Meta gives one", (file, status, timestamp, price) => {
    const parsed = parseWebhook(fixture(file), own);
    expect(parsed).toEqual({
      statuses: [{ wamid, status, timestamp, callbackData: "dlv_src_rule_Appointment_a1_3f2a", ...price }],
      inbound: [],
      templates: [],
      ignoredOtherNumber: 0,
      ignoredOther: 0,
      systemErrorCodes: [],
    });
  });

  it("reads a failed status with Meta's error code", () => {
    const [status] = parseWebhook(fixture("status-failed.json"), own).statuses;
    expect(status).toEqual({
      wamid: "wamid.HBgLMTU1NTc2NTQzMjIVAgARGBJBQjEyQ0QzNEVGNTZHSDc4AA",
      status: "failed",
      timestamp: "2025-10-14T08:20:02.000Z",
      callbackData: "dlv_src_rule_Appointment_a2_9c1d",
      errorCode: 131026,
    });
  });

  it("keeps the good items of a batch and counts the malformed and untracked ones", () => {
    const parsed = parseWebhook(fixture("batch-one-bad.json"), own);
    expect(parsed.statuses.map((s) => [s.status, s.callbackData])).toEqual([
      ["sent", "dlv_a"],
      ["delivered", "dlv_b"],
    ]);
    // no id, "played", and a timestamp that is not Unix seconds
    expect(parsed.ignoredOther).toBe(3);
  });

  it("ignores updates for another phone number on the same WABA", () => {
    const parsed = parseWebhook(fixture("other-number.json"), own);
    expect(parsed).toMatchObject({ statuses: [], inbound: [], ignoredOtherNumber: 1 });
  });

  it("accepts every phone number when ours is not configured", () => {
    expect(parseWebhook(fixture("other-number.json"), undefined).statuses).toHaveLength(1);
  });

  it("surfaces account-level errors that are not tied to a message", () => {
    expect(parseWebhook(fixture("system-error.json"), own).systemErrorCodes).toEqual([130429]);
  });

  it("counts changes for other subscribed fields as ignored", () => {
    expect(parseWebhook(fixture("phone-number-quality-update.json"), own)).toMatchObject({ statuses: [], inbound: [], templates: [], ignoredOther: 1 });
  });


  it("parses a 1,000-status batch near Meta's 3 MB limit", () => {
    const statuses = Array.from({ length: 1000 }, (_, i) => ({
      wamid: `wamid.${"H".repeat(60)}${i}`,
      status: "delivered" as const,
      timestamp: 1760430000 + i,
      recipientId: "15557654321",
      callbackData: `dlv_${"x".repeat(2500)}_${i}`,
    }));
    const body = buildStatusWebhook({ phoneNumberId: own, statuses });
    expect(body.length).toBeGreaterThan(2.5 * 1024 * 1024);
    expect(body.length).toBeLessThanOrEqual(maxWebhookBytes);
    expect(parseWebhook(body, own).statuses).toHaveLength(1000);
  });
});

describe("parseWebhook: inbound messages", () => {
  it("reads a quick-reply tap with its payload and the template's wamid", () => {
    expect(parseWebhook(fixture("reply-button.json"), own).inbound).toEqual([
      {
        id: "wamid.HBgLMTU1NTc2NTQzMjEVAgASGBQzRjE5OEQ1QjdBNkUwMTIzNDU2AA==",
        from: "15557654321",
        timestamp: "2025-10-14T08:41:40.000Z",
        contextWamid: wamid,
        kind: "button",
        buttonPayload: "rc1:CONFIRM:q7Hk2",
        optOut: false,
        optIn: false,
      },
    ]);
  });

  it("flags a STOP text as an opt-out and keeps no text", () => {
    const [message] = parseWebhook(fixture("text-stop.json"), own).inbound;
    expect(message).toEqual({
      id: "wamid.HBgLMTU1NTc2NTQzMjEVAgASGBQ5QzNBMkQxRTBGOEI3QTY1NDMyAA==",
      from: "15557654321",
      timestamp: "2025-10-14T08:43:20.000Z",
      kind: "text",
      optOut: true,
      optIn: false,
    });
  });

  it("drops free text, which may hold health details, and does not treat it as an opt-out", () => {
    const parsed = parseWebhook(fixture("text-free.json"), own);
    expect(parsed.inbound).toMatchObject([{ kind: "text", optOut: false, from: "5215512345678" }]);
    const kept = JSON.stringify(parsed);
    for (const fragment of ["diabetes", "Ruiz", "cita", "example.com", "Jos"]) expect(kept).not.toContain(fragment);
  });

  it("reads an interactive reply with its reply id", () => {
    expect(parseWebhook(fixture("interactive-reply.json"), own).inbound).toMatchObject([
      { kind: "interactive", buttonPayload: "rc1:RESCHEDULE:q7Hk2", contextWamid: wamid, optOut: false },
    ]);
  });

  it("reads other message types as 'other' without their content", () => {
    const parsed = parseWebhook(fixture("image-message.json"), own);
    expect(parsed.inbound).toMatchObject([{ kind: "other", optOut: false }]);
    expect(JSON.stringify(parsed)).not.toContain("lab results");
  });

  it("accepts a reply and a status that carry only a business-scoped user id", () => {
    const parsed = parseWebhook(fixture("user-id-only.json"), own);
    expect(parsed.inbound).toEqual([
      expect.objectContaining({ userId: "US.13491208655302741918", kind: "button", buttonPayload: "rc1:CONFIRM:q7Hk2", contextWamid: wamid }),
    ]);
    expect(parsed.inbound[0]).not.toHaveProperty("from");
    expect(parsed.statuses).toMatchObject([{ status: "read" }]);
    expect(parsed.ignoredOther).toBe(0);
  });

  it("parses what it verified: a signed body with accents, emoji and slashes", () => {
    const body = buildInboundWebhook({
      phoneNumberId: own,
      messages: [{ from: "34600111222", id: "wamid.A", timestamp: "1760431400", type: "text", text: { body: "  No más 🙏 / gracias  " } }],
    });
    const secret = "app-secret";
    expect(hasValidSignature(new TextEncoder().encode(body), signWebhook(body, secret), secret)).toBe(true);
    expect(parseWebhook(body, own).inbound[0]?.optOut).toBe(false);
  });
});

describe("parseWebhook: rejection", () => {
  it("rejects a body that is not JSON without quoting it", () => {
    const err = invalid(() => parseWebhook("{\"secret-phi\": Alex Pena", own));
    expect(err.code).toBe("invalid");
    expect(err.message).not.toContain("Alex");
    expect(err.cause).toBeUndefined();
  });

  it.each([
    ["another object type", { object: "page", entry: [] }],
    ["no entry list", { object: "whatsapp_business_account" }],
    ["an entry without changes", { object: "whatsapp_business_account", entry: [{ id: "1" }] }],
    ["a JSON array", []],
  ])("rejects an envelope with %s", (_, body) => {
    const err = invalid(() => parseWebhook(JSON.stringify(body), own));
    expect(err.code).toBe("invalid");
    expect(err.status).toBe(400);
  });
});

describe("opt-out keywords", () => {
  const textBody = (text: string) =>
    buildInboundWebhook({ phoneNumberId: own, messages: [{ from: "15557654321", id: "wamid.T", timestamp: "1760431400", type: "text", text: { body: text } }] });

  it.each(["STOP", "stop", "  Stop!  ", "Unsubscribe", "cancel.", "BAJA", "baja", "Parar", "ALTO", "No más", "no  mas", "NO MÁS!!", "Cancelar", "ＳＴＯＰ"])(
    "treats %j as an opt-out",
    (text) => {
      expect(parseWebhook(textBody(text), own).inbound[0]?.optOut).toBe(true);
    },
  );

  it.each(["please stop sending at night", "stopp", "ok", "No", "más", "", "🛑"])("does not treat %j as an opt-out", (text) => {
    expect(parseWebhook(textBody(text), own).inbound[0]?.optOut).toBe(false);
  });

  it("uses a configured keyword list instead of the default", () => {
    const words = { optOut: ["SAIR", "PARE"], optIn: ["VOLTAR"] };
    expect(parseWebhook(textBody("Sair"), own, words).inbound[0]?.optOut).toBe(true);
    expect(parseWebhook(textBody("STOP"), own, words).inbound[0]?.optOut).toBe(false);
    expect(parseWebhook(textBody("voltar"), own, words).inbound[0]).toMatchObject({ optOut: false, optIn: true });
  });

  it("normalises configured keywords the same way as the text", () => {
    expect(normaliseKeyword(" não   mais ")).toBe(normaliseKeyword("NAO MAIS"));
  });
});

describe("parseWebhook: template webhooks (Meta's message_template_status_update, template_category_update, message_template_quality_update)", () => {
  it("reads a status event with its template, language, category and the entry time, ignoring fields it does not know", () => {
    expect(parseWebhook(fixture("template-status-paused.json"), own).templates).toEqual([
      { kind: "status", event: "PAUSED", category: "UTILITY", templateName: "appointment_confirmation_v1", languageCode: "en_US", templateId: "123456790", at: "2025-10-14T08:53:20.000Z" },
    ]);
    expect(parseWebhook(fixture("template-status-update.json"), own).templates).toMatchObject([{ kind: "status", event: "APPROVED", templateName: "appointment_reminder_v1" }]);
  });

  it("tells a completed recategorisation from the advance notice", () => {
    expect(parseWebhook(fixture("template-category-marketing.json"), own).templates).toMatchObject([{ kind: "category", previousCategory: "UTILITY", newCategory: "MARKETING" }]);
    const [pending] = parseWebhook(fixture("template-category-pending.json"), own).templates;
    expect(pending).toMatchObject({ kind: "category", correctCategory: "MARKETING", newCategory: "UTILITY", effectiveAt: "2025-10-15T08:53:20.000Z" });
    expect(pending).not.toHaveProperty("previousCategory");
  });

  it("reads a quality change", () => {
    expect(parseWebhook(fixture("template-quality-red.json"), own).templates).toMatchObject([{ kind: "quality", newScore: "RED", previousScore: "YELLOW" }]);
  });

  it("counts a template event without a name or language as ignored instead of failing the POST", () => {
    const body = JSON.stringify({ object: "whatsapp_business_account", entry: [{ id: "1", changes: [{ field: "message_template_status_update", value: { event: "PAUSED" } }] }] });
    expect(parseWebhook(body, own)).toMatchObject({ templates: [], ignoredOther: 1 });
  });
});

describe("parseWebhook: business-scoped user ids (usernames, 2026)", () => {
  it("reads a reply and a status that carry only a BSUID, without a phone number", () => {
    const parsed = parseWebhook(fixture("user-id-only.json"), own);
    expect(parsed.inbound).toMatchObject([{ kind: "button", userId: "US.13491208655302741918", contextWamid: wamid }]);
    expect(parsed.inbound[0]).not.toHaveProperty("from");
    expect(parsed.statuses).toMatchObject([{ status: "read", userId: "US.13491208655302741918" }]);
  });

  it("takes the BSUID from the message's contact when the message itself has none", () => {
    const body = JSON.stringify({
      object: "whatsapp_business_account",
      entry: [{ id: "1", changes: [{ field: "messages", value: { metadata: { phone_number_id: own }, contacts: [{ profile: { username: "@alex.r" }, user_id: "US.1" }], messages: [{ id: "wamid.X", timestamp: "1760431800", type: "text", text: { body: "start" } }] } }] }],
    });
    expect(parseWebhook(body, own).inbound).toEqual([{ id: "wamid.X", userId: "US.1", timestamp: "2025-10-14T08:50:00.000Z", kind: "text", optOut: false, optIn: true }]);
  });

  it("reads recipient_user_id on a status", () => {
    const body = JSON.stringify({
      object: "whatsapp_business_account",
      entry: [{ id: "1", changes: [{ field: "messages", value: { metadata: { phone_number_id: own }, statuses: [{ id: "wamid.S", status: "delivered", timestamp: "1760431800", recipient_user_id: "US.2", recipient_parent_user_id: "US.ENT.3" }] } }] }],
    });
    expect(parseWebhook(body, own).statuses).toMatchObject([{ wamid: "wamid.S", userId: "US.2" }]);
  });
});
