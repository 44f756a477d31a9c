import { describe, expect, it } from "vitest";
import { mappingConfigSchema } from "../../src/mapping/mapping.config.js";

describe("mappingConfigSchema", () => {
  it("fills every default from an empty object", () => {
    const c = mappingConfigSchema.parse({});
    expect(c).toMatchObject({
      dir: "mappings",
      defaultLanguage: "en_US",
      languages: { en: "en_US", es: "es" },
      defaultRegion: "US",
      defaultTimeZone: "America/New_York",
      portal: { url: "https://portal.example.org" },
      organization: { displayName: "the clinic" },
      locations: {},
      pharmacies: {},
      consent: { mode: "consent-resource", categorySystem: "https://fhir-notify.dev/fhir/CodeSystem/consent-category", categoryCode: "whatsapp-logistics" },
      reminder: { leadHours: 24 },
      prescriptionReadySignal: "MedicationDispense",
    });
  });

  it("records an opt-out as a deny Consent only where consent lives in Consent resources", () => {
    expect(mappingConfigSchema.parse({}).consent.onOptOut).toBe("none");
    expect(mappingConfigSchema.parse({ consent: { onOptOut: "record-deny" } }).consent.onOptOut).toBe("record-deny");
    const wrong = mappingConfigSchema.safeParse({ consent: { mode: "patient-tag", onOptOut: "record-deny" } });
    expect(wrong.success).toBe(false);
    expect(wrong.error?.issues[0]).toMatchObject({ path: ["consent", "onOptOut"], message: "record-deny needs mode consent-resource" });
  });

  it("rejects unknown keys, which are usually typos", () => {
    expect(mappingConfigSchema.safeParse({ reminders: { leadHours: 24 } }).success).toBe(false);
    expect(mappingConfigSchema.safeParse({ locations: { "Location/a": { label: "A", tz: "UTC" } } }).success).toBe(false);
  });

  it("keeps the reminder lead time within 24 to 48 hours", () => {
    expect(mappingConfigSchema.safeParse({ reminder: { leadHours: 12 } }).success).toBe(false);
    expect(mappingConfigSchema.safeParse({ reminder: { leadHours: 49 } }).success).toBe(false);
    expect(mappingConfigSchema.parse({ reminder: { leadHours: 36 } }).reminder.leadHours).toBe(36);
  });

  it("validates time zones, language codes, references and the portal scheme", () => {
    expect(mappingConfigSchema.safeParse({ defaultTimeZone: "Mars/Olympus" }).success).toBe(false);
    expect(mappingConfigSchema.safeParse({ languages: { en: "english" } }).success).toBe(false);
    expect(mappingConfigSchema.safeParse({ locations: { "loc-1": { label: "A" } } }).success).toBe(false);
    expect(mappingConfigSchema.safeParse({ pharmacies: { "Practitioner/p": { name: "A" } } }).success).toBe(false);
    expect(mappingConfigSchema.safeParse({ portal: { url: "http://portal.example.org" } }).success).toBe(false);
  });
});
