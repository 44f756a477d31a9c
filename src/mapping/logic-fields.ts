import type { TriggerType } from "../shared/trigger-type.js";

/**
 * The only element paths a rule's FHIRPath may touch (fhir-notifications.md §8: LOGIC class).
 * Deny by default: anything not listed, on any resource type, is rejected when rules load.
 * `suppress` conditions may additionally read coded elements (codes and systems only, never
 * text or display) so sites can silence sensitive services, drugs or tests.
 */
const common = ["id", "meta.versionId", "meta.lastUpdated", "meta.tag.system", "meta.tag.code", "status"];
const coded = (element: string): string[] => [`${element}.coding.system`, `${element}.coding.code`];
const ref = (element: string): string => `${element}.reference`;

export type ConditionKind = "trigger" | "suppress" | "distinctBy";

interface FieldSet {
  readonly logic: readonly string[];
  readonly suppressOnly: readonly string[];
}

const fields: Record<TriggerType, FieldSet> = {
  Appointment: {
    logic: [...common, "start", "end", "minutesDuration", "created", "priority", "participant.status", "participant.required", ref("participant.actor"), ref("slot")],
    suppressOnly: [...coded("serviceCategory"), ...coded("serviceType"), ...coded("specialty"), ...coded("appointmentType")],
  },
  MedicationDispense: {
    logic: [...common, ref("subject"), ref("location"), ref("authorizingPrescription"), "whenPrepared", "whenHandedOver"],
    suppressOnly: [...coded("medication"), ...coded("medicationCodeableConcept"), ...coded("category"), ...coded("type")],
  },
  MedicationRequest: {
    logic: [
      ...common,
      "intent",
      ref("subject"),
      ref("dispenseRequest.performer"),
      // Sites that flag "ready" with a local extension (prescriptionReadySignal: MedicationRequest-extension).
      // Typed values only: the polymorphic `extension.value` also returns valueString/valueMarkdown
      // (a pharmacist's free text) and would carry it into a trigger or a stored distinctBy value.
      "extension.url",
      "extension.valueCode",
      "extension.valueBoolean",
      "extension.valueDateTime",
      ...coded("extension.valueCodeableConcept"),
      "extension.valueCoding.system",
      "extension.valueCoding.code",
    ],
    suppressOnly: [...coded("medication"), ...coded("medicationCodeableConcept"), ...coded("category"), ...coded("courseOfTherapyType")],
  },
  DiagnosticReport: {
    logic: [...common, ref("subject"), "issued", ...coded("category")],
    suppressOnly: [...coded("code")],
  },
  Task: {
    logic: [...common, "intent", ...coded("businessStatus"), ...coded("code"), ref("focus"), ref("for"), ref("owner"), "authoredOn", "lastModified"],
    suppressOnly: [],
  },
};

/** What a PreviousProjection holds; %previous paths are checked against these. */
const projectionFields = ["resourceType", "id", "meta.versionId", "status", "start", "end", "intent", "issued", "businessStatus.coding.system", "businessStatus.coding.code"];

/**
 * May a condition of this kind read `path` (dotted, relative to the resource)? Intermediate
 * steps (`participant` on the way to `participant.status`) are allowed for navigation; what a
 * distinctBy expression *returns* is checked again with isAllowedValuePath.
 */
export function isAllowedPath(resourceType: TriggerType, kind: ConditionKind, path: string, previous: boolean): boolean {
  const set = fields[resourceType];
  const allowed = previous ? projectionFields : kind === "suppress" ? [...set.logic, ...set.suppressOnly] : set.logic;
  return allowed.some((a) => path === a || path.startsWith(`${a}.`) || a.startsWith(`${path}.`));
}

/** A distinctBy result must be a whole allowed element, not an intermediate node holding denied children. */
export function isAllowedValuePath(resourceType: TriggerType, path: string): boolean {
  return fields[resourceType].logic.some((a) => path === a || path.startsWith(`${a}.`));
}

/**
 * `extension.value` (or anything under it) on a type whose rules may read extensions: FHIRPath
 * returns whatever value[x] the extension has, free text included, so it is refused with its own
 * explanation rather than the generic "forbidden field".
 */
export function readsPolymorphicExtensionValue(resourceType: TriggerType, path: string): boolean {
  return fields[resourceType].logic.includes("extension.url") && (path === "extension.value" || path.startsWith("extension.value."));
}
