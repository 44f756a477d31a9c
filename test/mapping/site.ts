import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { onTestFinished } from "vitest";
import { FakeFhir } from "../fakes/fhir.fake.js";
import { loadFixture } from "../fixtures/fhir/load-fixture.js";
import { loadMappingSet } from "../../src/mapping/load-rules.js";
import { createMapping, type Mapping } from "../../src/mapping/mapping.js";
import { mappingConfigSchema, type MappingConfig } from "../../src/mapping/mapping.config.js";
import { manualClock } from "../../src/shared/clock.js";

/** The repository's own rule set: tests exercise exactly what ships. */
export const mappingsDir = fileURLToPath(new URL("../../mappings", import.meta.url));

/** A two-site configuration: Chicago (English, zone from the Location resource) and Madrid (Spanish, configured zone). */
export function testSite(overrides: Record<string, unknown> = {}): MappingConfig {
  return mappingConfigSchema.parse({
    languages: { en: "en_US", es: "es" },
    organization: { reference: "Organization/org-riverside", displayName: "Riverside Health", phone: "+1 312 555 0100" },
    portal: { url: "https://portal.example.org", tokenSecret: "test-secret-0123456789abcdef" },
    locations: {
      "Location/loc-riverside": { label: "Riverside Clinic, 12 Main St" },
      "Location/loc-madrid": { label: "Clínica Retiro, calle de Alcalá 120", timeZone: "Europe/Madrid" },
    },
    pharmacies: {
      "Location/loc-pharmacy-main": { name: "Riverside Pharmacy", addressLine: "12 Main St", hours: "Mon-Sat 9 AM - 7 PM" },
      "Organization/pharm-central": { name: "Riverside Pharmacy", hours: "Mon-Sat 9 AM - 7 PM" },
    },
    ...overrides,
  });
}

/** The instant the booking notifications are processed: before both zones switch to summer time. */
export const bookingTime = new Date("2026-03-02T16:00:00Z");

export function testMapping(site: MappingConfig = testSite(), now: Date = bookingTime): Mapping {
  return createMapping(loadMappingSet(mappingsDir), site, manualClock(now));
}

/** A FHIR server holding both patients, their opt-in, the places and the people the fixtures refer to. */
export function testFhir(): FakeFhir {
  return new FakeFhir([
    loadFixture("Patient", "jordan-rivera-en"),
    loadFixture("Patient", "lucia-garcia-es"),
    loadFixture("Consent", "whatsapp-permit-pat-1001"),
    loadFixture("Consent", "whatsapp-permit-pat-2002"),
    loadFixture("Location", "loc-riverside"),
    loadFixture("Location", "loc-madrid"),
    loadFixture("Location", "loc-pharmacy-main"),
    loadFixture("Practitioner", "prac-22"),
    loadFixture("Organization", "pharm-central"),
    loadFixture("MedicationRequest", "sertraline-order"),
  ]);
}

/** A throwaway mappings folder: the shipped templates plus the given rule files. Removed after the test. */
export function ruleFolder(files: Record<string, string>, options: { withShippedRules?: boolean } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "fn-mappings-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(mappingsDir, "templates"), join(dir, "templates"), { recursive: true });
  if (options.withShippedRules === true) cpSync(mappingsDir, dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** Every clinical string the fixtures carry; none may ever appear in a message. */
export const clinicalPhrases = [
  "Oncology",
  "oncolog",
  "breast",
  "biopsy",
  "Malignant",
  "chemotherapy",
  "tamoxifen",
  "mammography",
  "Sertraline",
  "sertralin",
  "depress",
  "serotonin",
  "tramadol",
  "HIV",
  "VIH",
  "viral",
  "antirretroviral",
  "Biktarvy",
  "indetectable",
  "Not detected",
  "Infecciosas",
  "Psychiatry",
  "MRN-00481516",
  "1987-11-23",
  "Kedzie",
  "60625",
  "Toledo",
  "Rivera",
  "García",
  "Lima",
  "394593009",
  "312940",
];
