import { z } from "zod";
import { AppError } from "../shared/app-error.js";
import { isFhirResourceType } from "./fhir-resource-types.js";
import { parseShape } from "./parse-shape.js";
import type { Interaction, ResourceEvent } from "./resource-event.js";
import { isFhirId } from "./resource-ref.js";

// Event Grid schema (not CloudEvents): https://learn.microsoft.com/azure/event-grid/event-schema-azure-health-data-services
const fhirEventPrefix = "Microsoft.HealthcareApis.FhirResource";
const validationEventType = "Microsoft.EventGrid.SubscriptionValidationEvent";

const eventSchema = z.object({ id: z.string(), eventType: z.string(), data: z.unknown() });
const fhirDataSchema = z.object({
  resourceType: z.string(),
  resourceFhirId: z.string(),
  // Documented as a number; a string is tolerated. Our ResourceEvent keeps versions as strings.
  resourceVersionId: z.union([z.number().int().nonnegative(), z.string()]).transform(String).optional(),
});
const validationDataSchema = z.object({ validationCode: z.string().min(1) });

type EventGridResult = { kind: "validation"; body: { validationResponse: string } } | { kind: "events"; events: ResourceEvent[]; ignored: number };

/** Event Grid POSTs a JSON array; every item carries `eventType`. */
export function isEventGridBatch(json: unknown): json is unknown[] {
  return Array.isArray(json) && json.every((e) => typeof e === "object" && e !== null && typeof (e as { eventType?: unknown }).eventType === "string");
}

export function parseEventGridBatch(batch: readonly unknown[], ctx: { source: string; receivedAt: string }): EventGridResult {
  const events: ResourceEvent[] = [];
  let ignored = 0;
  for (const [i, item] of batch.entries()) {
    const root = `[${i}]`;
    const event = parseShape(eventSchema, item, root, "Event Grid event");
    if (event.eventType === validationEventType) {
      // Event Grid's handshake: echo the code and nothing else happens for this request.
      const data = parseShape(validationDataSchema, event.data, `${root}.data`, "Event Grid validation event");
      return { kind: "validation", body: { validationResponse: data.validationCode } };
    }
    const interaction = interactionOf(event.eventType);
    if (interaction === undefined) {
      ignored += 1; // another Health Data Services event (DICOM, ...): authentic but not ours
      continue;
    }
    const data = parseShape(fhirDataSchema, event.data, `${root}.data`, "Event Grid FHIR event");
    if (!isFhirResourceType(data.resourceType)) throw new AppError("invalid", "resourceType is not a FHIR resource type", `${root}.data.resourceType`);
    if (!isFhirId(data.resourceFhirId)) throw new AppError("invalid", "resourceFhirId is not a valid FHIR id", `${root}.data.resourceFhirId`);
    events.push({
      source: ctx.source,
      resourceType: data.resourceType,
      id: data.resourceFhirId,
      ...(data.resourceVersionId !== undefined ? { versionId: data.resourceVersionId } : {}),
      interaction,
      receivedAt: ctx.receivedAt,
      shape: "azure-event-grid",
    });
  }
  return { kind: "events", events, ignored };
}

function interactionOf(eventType: string): Interaction | undefined {
  if (!eventType.startsWith(fhirEventPrefix)) return undefined;
  switch (eventType.slice(fhirEventPrefix.length)) {
    case "Created":
      return "create";
    case "Updated":
      return "update";
    case "Deleted":
      return "delete";
    default:
      return "unknown";
  }
}
