import { describe, expect, it } from "vitest";
import { MappingError } from "../../src/mapping/load-rules.js";
import { loadSiteMapping } from "../../src/mapping/mapping.js";
import { checkSiteLabels } from "../../src/mapping/site-labels.js";
import { mappingsDir, testSite } from "./site.js";

function labelError(overrides: Record<string, unknown>): string {
  try {
    checkSiteLabels(testSite(overrides));
  } catch (err) {
    if (err instanceof MappingError) return err.message;
    throw err;
  }
  throw new Error("expected the labels to be rejected");
}

const because = (term: string) => `the configured label names '${term}', a clinical term (src/mapping/clinical-terms.ts): every message that names this place would show it`;

describe("configured labels", () => {
  it.each([
    ["a Location label", { locations: { "Location/loc-riverside": { label: "Riverside HIV Clinic" } } }, "mapping.locations.Location/loc-riverside.label", "HIV"],
    ["the organization's display name", { organization: { displayName: "Lakeside Cancer Center" } }, "mapping.organization.displayName", "cancer"],
    ["a pharmacy name", { pharmacies: { "Location/loc-pharmacy-main": { name: "Methadone Dispensary" } } }, "mapping.pharmacies.Location/loc-pharmacy-main.name", "methadone"],
    ["a pharmacy's hours", { pharmacies: { "Location/loc-pharmacy-main": { name: "Riverside Pharmacy", hours: "PrEP pickup Mon-Fri" } } }, "mapping.pharmacies.Location/loc-pharmacy-main.hours", "PrEP"],
    ["accented letters", { locations: { "Location/loc-madrid": { label: "Unidad de Psiquiatr\u00EDa, Retiro" } } }, "mapping.locations.Location/loc-madrid.label", "psiquiatria"],
  ])("fails a clinical term in %s, naming the key and not the text", (_label, overrides, key, term) => {
    expect(labelError(overrides)).toBe(`${key}: ${because(term)}`);
  });

  it("passes ordinary public labels", () => {
    expect(() => checkSiteLabels(testSite())).not.toThrow();
    expect(() => checkSiteLabels(testSite({ locations: { "Location/loc-tbilisi": { label: "Tbilisi Clinic, 3 Hive St" } } }))).not.toThrow();
  });

  it("is part of the boot check serve and `mappings check` run", () => {
    expect(() => loadSiteMapping({ ...testSite({ organization: { displayName: "Riverside IVF" } }), dir: mappingsDir })).toThrow(
      `mapping.organization.displayName: ${because("IVF")}`,
    );
  });
});
