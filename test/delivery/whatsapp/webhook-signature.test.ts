import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { hasValidSignature } from "../../../src/delivery/whatsapp/webhook-signature.js";
import { buildInboundWebhook, metaJson, signWebhook } from "../../fakes/graph-api.server.js";

const secret = "test-app-secret-5f0c";
const bytes = (s: string) => new TextEncoder().encode(s);

function textWebhook(body: string): string {
  return buildInboundWebhook({
    phoneNumberId: "200000000000002",
    messages: [{ from: "15557654321", id: "wamid.HBgLMTU1NTc2NTQzMjEVAgASGBQ5QzNBMkQxRTBGOEI3QTY1NDMyAA==", timestamp: "1760431400", type: "text", text: { body } }],
  });
}

describe("hasValidSignature", () => {
  it.each([
    ["an é", "Merci, à bientôt José"],
    ["an ñ", "Mañana no puedo, señora"],
    ["an emoji", "Thanks 👍🏽 see you"],
    ["a slash", "https://example.org/a/b"],
    ["an @", "write to alex@example.org"],
    ["all of them", "José Núñez 😷 alex@example.org / https://x.example/y"],
  ])("accepts Meta's signature over the exact bytes of a body with %s", (_, text) => {
    const wire = textWebhook(text);
    expect(JSON.parse(wire).entry[0].changes[0].value.messages[0].text.body).toBe(text);
    if (/[^\x20-\x7e]|\//.test(text)) expect(wire).not.toContain(text); // on the wire: \u00e9, \ud83d\udc4d, \/
    expect(hasValidSignature(bytes(wire), signWebhook(wire, secret), secret)).toBe(true);
  });

  it("rejects the same signature once the body has been re-serialised", () => {
    const wire = textWebhook("José 👍 a/b");
    const reserialised = JSON.stringify(JSON.parse(wire));
    expect(reserialised).not.toBe(wire);
    expect(hasValidSignature(bytes(reserialised), signWebhook(wire, secret), secret)).toBe(false);
  });

  it("accepts a body sent as raw UTF-8 when Meta signed those bytes", () => {
    const wire = JSON.stringify({ object: "whatsapp_business_account", entry: [], note: "é ñ 😷 / @" });
    expect(hasValidSignature(bytes(wire), signWebhook(bytes(wire), secret), secret)).toBe(true);
  });

  it("rejects a signature made with another secret", () => {
    const wire = metaJson({ a: "b" });
    expect(hasValidSignature(bytes(wire), signWebhook(wire, "other-secret"), secret)).toBe(false);
  });

  it("rejects a body that changed by one byte", () => {
    const wire = metaJson({ a: "b" });
    expect(hasValidSignature(bytes(`${wire} `), signWebhook(wire, secret), secret)).toBe(false);
  });

  it("accepts upper-case hex", () => {
    const wire = metaJson({ a: "b" });
    const hex = createHmac("sha256", secret).update(wire).digest("hex").toUpperCase();
    expect(hasValidSignature(bytes(wire), `sha256=${hex}`, secret)).toBe(true);
  });

  const wire = metaJson({ a: "b" });
  const good = signWebhook(wire, secret);
  it.each([
    ["missing", undefined],
    ["empty", ""],
    ["without the sha256= prefix", good.slice("sha256=".length)],
    ["a legacy sha1= header", `sha1=${createHmac("sha1", secret).update(wire).digest("hex")}`],
    ["truncated by one hex digit", good.slice(0, -1)],
    ["truncated to half", good.slice(0, 7 + 32)],
    ["one byte too long", `${good}00`],
    ["not hex", `sha256=${"z".repeat(64)}`],
    ["a valid prefix followed by junk", `${good};v=2`],
  ])("rejects a header that is %s, without throwing", (_, header) => {
    expect(() => hasValidSignature(bytes(wire), header, secret)).not.toThrow();
    expect(hasValidSignature(bytes(wire), header, secret)).toBe(false);
  });

  it("rejects everything when no app secret is configured", () => {
    expect(hasValidSignature(bytes(wire), signWebhook(wire, ""), "")).toBe(false);
  });
});
