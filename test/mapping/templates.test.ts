import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadMappingSet, MappingError } from "../../src/mapping/load-rules.js";
import { renderBody, toMetaTemplateRequests } from "../../src/mapping/templates.js";
import { mappingsDir, ruleFolder } from "./site.js";

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

describe("fixed-text lint", () => {
  /** The shipped rules and templates with one template file edited; the loader's message, folder removed. */
  function lintError(file: string, edit: (text: string) => string): string {
    const dir = ruleFolder({}, { withShippedRules: true });
    const path = join(dir, "templates", file);
    const before = readFileSync(path, "utf8");
    const after = edit(before);
    if (after === before) throw new Error("the edit changed nothing");
    writeFileSync(path, after);
    try {
      loadMappingSet(dir);
    } catch (err) {
      if (!(err instanceof MappingError)) throw err;
      return err.message.replace(`${dir}/`, "");
    }
    throw new Error("expected the template to be rejected");
  }
  const term = (t: string) => `fixed text names '${t}', a clinical term (src/mapping/clinical-terms.ts): every patient it goes to would read it`;

  it.each([
    ["the body", "appointment_confirmation_v1.yaml", (t: string) => t.replace("your appointment at {{2}}", "your oncology appointment at {{2}}"), "9: languages.en_US.body", "oncology"],
    ["the Spanish body, accents and all", "appointment_confirmation_v1.yaml", (t: string) => t.replace("su cita en", "su cita de Oncología en"), "13: languages.es.body", "oncologia"],
    ["the footer", "pharmacy_pickup_ready_v1.yaml", (t: string) => t.replace("Reply STOP to stop these", "Reply STOP to stop these HIV"), "9: languages.en_US.footer", "HIV"],
    ["a quick-reply button text", "appointment_reminder_v1.yaml", (t: string) => t.replace("text: Reschedule", "text: Reschedule chemo"), "13: languages.en_US.buttons[1].text", "chemo"],
    ["a URL button path", "visit_followup_portal_v1.yaml", (t: string) => t.replace('path: "/s/{{1}}", example: a1B2c3D4e5F6 }\n    example: [Alex', 'path: "/hiv/{{1}}", example: a1B2c3D4e5F6 }\n    example: [Alex'), "11: languages.en_US.buttons[0].path", "HIV"],
    ["a sample value sent to Meta for review", "pharmacy_pickup_ready_v1.yaml", (t: string) => t.replace('"Riverside Pharmacy, 12 Main St"', '"Riverside PrEP Pharmacy"'), "10: languages.en_US.example[1]", "PrEP"],
    ["the template name", "portal_document_available_v1.yaml", (t: string) => t.replace("name: portal_document_available_v1", "name: portal_hiv_result_v1"), "3: name", "HIV"],
    ["Cyrillic look-alike letters", "appointment_confirmation_v1.yaml", (t: string) => t.replace("your appointment at {{2}}", "your \u0441\u0430ncer appointment at {{2}}"), "9: languages.en_US.body", "cancer"],
  ])("fails a clinical term in %s, naming the file, line and part", (_label, file, edit, where, found) => {
    expect(lintError(file, edit)).toBe(`templates/${file}:${where}: ${term(found)}`);
  });

  it("passes the shipped templates' ordinary wording (appointment, portal, order, insurance card)", () => {
    expect(() => loadMappingSet(mappingsDir)).not.toThrow();
  });
});
