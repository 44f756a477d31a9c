import { describe, expect, it } from "vitest";
import { loadMappingSet } from "../../src/mapping/load-rules.js";
import { renderBody, toMetaTemplateRequests } from "../../src/mapping/templates.js";
import { mappingsDir } from "./site.js";

const templates = loadMappingSet(mappingsDir).templates;

describe("shipped templates", () => {
  it("are all UTILITY, in English and Spanish, with a STOP footer", () => {
    expect(templates.size).toBeGreaterThanOrEqual(6);
    for (const t of templates.values()) {
      expect(t.category).toBe("UTILITY");
      expect([...t.languages.keys()].sort()).toEqual(["en_US", "es"]);
      expect(t.languages.get("en_US")?.footer).toMatch(/STOP/);
      expect(t.languages.get("es")?.footer).toMatch(/BAJA/);
    }
  });

  it("never mention results, medicines or diagnoses", () => {
    for (const t of templates.values()) {
      for (const lang of t.languages.values()) {
        expect(lang.body).not.toMatch(/result|resultado|medic|prescription|receta|diagnos|test/i);
      }
    }
  });
});

describe("toMetaTemplateRequests", () => {
  it("builds the message_templates request for each language, with examples and buttons", () => {
    const reminder = templates.get("appointment_reminder_v1");
    if (!reminder) throw new Error("reminder template missing");
    const [en] = toMetaTemplateRequests(reminder, "https://portal.hospital.example");
    expect(en).toEqual({
      name: "appointment_reminder_v1",
      language: "en_US",
      category: "UTILITY",
      message_send_ttl_seconds: "43200",
      components: [
        {
          type: "BODY",
          text: "Reminder for {{1}}: you have an appointment at {{2}} on {{3}} at {{4}}. Please tap a button below to confirm or to ask for another time.",
          example: { body_text: [["Alex", "Riverside Clinic, 12 Main St", "Tuesday, October 14", "9:30 AM"]] },
        },
        { type: "FOOTER", text: "Reply STOP to stop these WhatsApp messages" },
        { type: "BUTTONS", buttons: [{ type: "QUICK_REPLY", text: "Confirm" }, { type: "QUICK_REPLY", text: "Reschedule" }] },
      ],
    });
  });

  it("points URL buttons at the site's own portal, with their example suffix", () => {
    const doc = templates.get("portal_document_available_v1");
    if (!doc) throw new Error("document template missing");
    const requests = toMetaTemplateRequests(doc, "https://portal.hospital.example/") as { components: { type: string; buttons?: unknown[] }[] }[];
    expect(requests[1]?.components.find((c) => c.type === "BUTTONS")?.buttons).toEqual([
      { type: "URL", text: "Ver en el portal", url: "https://portal.hospital.example/d/{{1}}", example: ["Zx81kQ4pLm2R"] },
    ]);
  });
});

describe("renderBody", () => {
  it("substitutes positional values and appends the footer", () => {
    const lang = { body: "Hello {{1}}, see you at {{2}}.", footer: "Reply STOP", buttons: [], example: [] };
    expect(renderBody(lang, ["Ana", "Riverside"])).toBe("Hello Ana, see you at Riverside.\nReply STOP");
  });
});
