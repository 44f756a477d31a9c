import { z } from "zod";
import { AppError } from "../shared/app-error.js";
import { isFhirResourceType } from "./fhir-resource-types.js";
import { parseShape } from "./parse-shape.js";
import type { Interaction, ResourceEvent } from "./resource-event.js";
import { isFhirId } from "./resource-ref.js";

// Pub/Sub push envelope: https://cloud.google.com/pubsub/docs/push ; FHIR payload: https://cloud.google.com/healthcare-api/docs/fhir-pubsub
const pushSchema = z.object({
  message: z.object({
    data: z.string().regex(/^[A-Za-z0-9+/_-]*={0,2}$/, "base64"),
    attributes: z.record(z.string(), z.string()).optional(),
    messageId: z.string().optional(),
    message_id: z.string().optional(),
  }),
  subscription: z.string(),
});

const resourceName = /^projects\/[^/]+\/locations\/[^/]+\/datasets\/[^/]+\/fhirStores\/[^/]+\/fhir\/([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([A-Za-z0-9\-.]{1,64}))?$/;
const inlineResourceSchema = z.object({ resourceType: z.string(), id: z.string(), meta: z.object({ versionId: z.string().optional() }).optional() });

export function isPubSubPush(json: unknown): boolean {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return false;
  const o = json as Record<string, unknown>;
  return typeof o.subscription === "string" && typeof o.message === "object" && o.message !== null && !("resourceType" in o);
}

export function parsePubSubPush(json: unknown, ctx: { source: string; receivedAt: string }): { event: ResourceEvent; messageId?: string } {
  const push = parseShape(pushSchema, json, "message", "Pub/Sub push message");
  const text = Buffer.from(push.message.data, "base64").toString("utf8").trim();
  const ref = text.startsWith("{") ? inlineResource(text) : fromResourceName(text);
  if (!isFhirResourceType(ref.resourceType)) throw new AppError("invalid", "message.data names an unknown resource type", "message.data");
  const messageId = push.message.messageId ?? push.message.message_id;
  return {
    event: {
      source: ctx.source,
      ...ref,
      interaction: interactionOf(push.message.attributes?.action),
      receivedAt: ctx.receivedAt,
      shape: "google-pubsub",
    },
    ...(messageId !== undefined ? { messageId } : {}),
  };
}

function fromResourceName(name: string): { resourceType: string; id: string; versionId?: string } {
  const m = resourceName.exec(name);
  if (!m?.[1] || !m[2]) throw new AppError("invalid", "message.data is not a FHIR store resource name", "message.data");
  return { resourceType: m[1], id: m[2], ...(m[3] !== undefined ? { versionId: m[3] } : {}) };
}

/** Only when the store has sendFullResource on (we advise against it: it puts PHI into Pub/Sub). */
function inlineResource(text: string): { resourceType: string; id: string; versionId?: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new AppError("structure", "message.data is neither a resource name nor JSON", "message.data");
  }
  const r = parseShape(inlineResourceSchema, json, "message.data", "Pub/Sub resource");
  if (!isFhirId(r.id)) throw new AppError("invalid", "resource id is not a valid FHIR id", "message.data.id");
  return { resourceType: r.resourceType, id: r.id, ...(r.meta?.versionId !== undefined ? { versionId: r.meta.versionId } : {}) };
}

// The exact action spellings are unverified (reference §6.2), so match on the verb.
function interactionOf(action: string | undefined): Interaction {
  if (action === undefined) return "unknown";
  if (/delete/i.test(action)) return "delete";
  if (/create/i.test(action)) return "create";
  if (/update|patch/i.test(action)) return "update";
  return "unknown";
}
