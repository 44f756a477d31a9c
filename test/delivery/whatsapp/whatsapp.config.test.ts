import { defaultOptInKeywords, defaultOptOutKeywords } from "../../../src/delivery/whatsapp/webhook.schema.js";
import { describe, expect, it } from "vitest";
import { liveCredentials, whatsappConfigSchema } from "../../../src/delivery/whatsapp/whatsapp.config.js";

describe("whatsappConfigSchema", () => {
  it("defaults to dry-run against the public Graph API, pinned to v23.0, with a 15 s timeout", () => {
    const cfg = whatsappConfigSchema.parse({});
    expect(cfg).toEqual({
      apiBase: "https://graph.facebook.com",
      graphVersion: "v23.0",
      timeoutMs: 15_000,
      keywords: { optOut: [...defaultOptOutKeywords], optIn: [...defaultOptInKeywords] },
    });
    expect(liveCredentials(cfg)).toBeUndefined();
  });

  it("yields live credentials when the phone number id and token are both set", () => {
    const cfg = whatsappConfigSchema.parse({ phoneNumberId: "200000000000002", accessToken: "EAAG", graphVersion: "v25.0", timeoutMs: "20000" });
    expect(liveCredentials(cfg)).toEqual({
      apiBase: "https://graph.facebook.com",
      graphVersion: "v25.0",
      phoneNumberId: "200000000000002",
      accessToken: "EAAG",
      timeoutMs: 20_000,
    });
  });

  it.each([
    ["a minor version", { graphVersion: "v23.1" }, "graphVersion"],
    ["a version without v", { graphVersion: "23.0" }, "graphVersion"],
    ["a token without a phone number id", { accessToken: "EAAG" }, "accessToken"],
    ["a phone number id without a token", { phoneNumberId: "200000000000002" }, "accessToken"],
    ["a phone number id that is not numeric", { phoneNumberId: "+15550001111", accessToken: "EAAG" }, "phoneNumberId"],
    ["an API base that is not http(s)", { apiBase: "ftp://graph.facebook.com" }, "apiBase"],
    ["an unknown key", { phoneNumberID: "1" }, ""],
  ])("rejects %s, naming the field", (_, input, field) => {
    const r = whatsappConfigSchema.safeParse(input);
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path.join(".")).toBe(field);
  });
});
