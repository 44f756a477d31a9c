import type { Config } from "../config/config.schema.js";
import { loadSiteMapping } from "../mapping/mapping.js";
import { fetchMetaTemplates } from "../delivery/whatsapp/template-catalog.js";
import { compareTemplates, sentTemplates } from "../delivery/whatsapp/template-compare.js";
import { templateCatalogConfig } from "../delivery/whatsapp/whatsapp.config.js";

/**
 * `fhir-notify templates compare`: every template an enabled rule sends, in every language the
 * site sends, against what Meta holds for the WABA. Lines for stdout, and whether all matched.
 */
export async function templatesCompare(config: Config, fetchImpl: typeof fetch = fetch): Promise<{ lines: string[]; mismatches: number; checked: number }> {
  const catalog = templateCatalogConfig(config.whatsapp);
  if (catalog === undefined) throw new Error("WHATSAPP_BUSINESS_ACCOUNT_ID and WHATSAPP_ACCESS_TOKEN must be set to read Meta's templates");
  const mapping = loadSiteMapping(config.mapping);
  const languages = new Set([config.mapping.defaultLanguage, ...Object.values(config.mapping.languages)]);
  const results = compareTemplates(sentTemplates(mapping.rules), await fetchMetaTemplates(catalog, fetchImpl), languages);
  const lines = results.map((r) => `${r.problems.length === 0 ? "ok" : "MISMATCH"} ${r.name} ${r.language}${r.problems.length > 0 ? `: ${r.problems.join("; ")}` : ""}`);
  return { lines, mismatches: results.filter((r) => r.problems.length > 0).length, checked: results.length };
}
