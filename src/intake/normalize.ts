import { z } from "zod";
import { AppError } from "../shared/app-error.js";
import { isEventGridBatch, parseEventGridBatch } from "./azure-event-grid.js";
import { isFhirResourceType } from "./fhir-resource-types.js";
import { isPubSubPush, parsePubSubPush } from "./google-pubsub.js";
import { parseShape } from "./parse-shape.js";
import type { Interaction, NotificationShape, ResourceEvent } from "./resource-event.js";
import { isFhirId, parseReference } from "./resource-ref.js";
import type { SourceConfig } from "./source.config.js";
import { parseTopicBundle, type TopicInfo } from "./topic-notification.js";

export interface NotificationInput {
  source: string;
  sourceConfig: SourceConfig;
  method: "POST" | "PUT" | "DELETE";
  /** `:type` / `:id` when the server appended them to the endpoint (classic R4 with payload, HAPI). */
  pathType?: string;
  pathId?: string;
  contentType?: string;
  header(name: string): string | undefined;
  raw: Uint8Array;
  receivedAt: string;
}

export type Notification =
  | { kind: "events"; events: ResourceEvent[]; ignored: number; topic?: TopicInfo; dedupeKey?: string }
  /** Something changed but the notification does not say what: run a catch-up search (reference §7). */
  | { kind: "ping"; topic?: TopicInfo }
  | { kind: "handshake"; topic: TopicInfo }
  | { kind: "heartbeat"; topic: TopicInfo }
  | { kind: "query-status"; topic: TopicInfo }
  /** Azure Event Grid subscription validation: answer 200 with `body` as JSON. */
  | { kind: "validation"; body: unknown };

const jsonMediaTypes = new Set(["application/fhir+json", "application/json", "application/json+fhir"]);

/**
 * Turns any notification shape into hints, detecting shapes in the order of reference §14.
 * Authentication has already run on the raw bytes. Errors never quote the body.
 */
export function normalizeNotification(input: NotificationInput): Notification {
  const ctx = { source: input.source, receivedAt: input.receivedAt };
  const path = pathRef(input);

  // HAPI deletes arrive as DELETE {endpoint}/{Type}/{id} with no body (reference §3).
  if (input.method === "DELETE") {
    if (path === undefined) throw new AppError("invalid", "DELETE needs /{type}/{id} in the path", "resourceType");
    return filterTypes(input.sourceConfig, [{ ...ctx, ...path, interaction: "delete", shape: "rest-hook-delete" }]);
  }

  if (isBlank(input.raw)) {
    if (path === undefined) return { kind: "ping" };
    return filterTypes(input.sourceConfig, [{ ...ctx, ...path, interaction: interactionOf(input), shape: "rest-hook-resource" }]);
  }

  checkContentType(input.contentType);
  const json = parseJson(input.raw);

  if (isEventGridBatch(json)) {
    const result = parseEventGridBatch(json, ctx);
    if (result.kind === "validation") return result;
    const filtered = filterTypes(input.sourceConfig, result.events);
    return { ...filtered, ignored: filtered.ignored + result.ignored };
  }
  if (isPubSubPush(json)) {
    const { event, messageId } = parsePubSubPush(json, ctx);
    return { ...filterTypes(input.sourceConfig, [event]), ...(messageId !== undefined ? { dedupeKey: messageId } : {}) };
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new AppError("structure", "body is not a FHIR resource or a known notification envelope");
  }
  if (Object.keys(json).length === 0) return medplumEmptyBody(input, ctx);

  const resource = parseShape(resourceSchema, json, "Resource", "body");
  if (!isFhirResourceType(resource.resourceType)) throw new AppError("invalid", "resourceType is not a FHIR resource type", "resourceType");
  if (path !== undefined && path.resourceType !== resource.resourceType) {
    throw new AppError("invalid", "resourceType in the body does not match the type in the URL", `${resource.resourceType}.resourceType`);
  }

  if (resource.resourceType === "Bundle") return bundleNotification(input, json, ctx);

  const expression = resource.resourceType;
  if (resource.id === undefined) throw new AppError("required", "the resource has no id", `${expression}.id`);
  if (!isFhirId(resource.id)) throw new AppError("invalid", "id is not a valid FHIR id", `${expression}.id`);
  if (path !== undefined && path.id !== resource.id) throw new AppError("invalid", "id in the body does not match the id in the URL", `${expression}.id`);
  const versionId = resource.meta?.versionId;
  if (versionId !== undefined && !isFhirId(versionId)) throw new AppError("invalid", "meta.versionId is not a valid FHIR id", `${expression}.meta.versionId`);

  const shape: NotificationShape = isMedplum(input) ? "medplum" : "rest-hook-resource";
  return filterTypes(input.sourceConfig, [
    { ...ctx, resourceType: resource.resourceType, id: resource.id, ...(versionId !== undefined ? { versionId } : {}), interaction: interactionOf(input), shape },
  ]);
}

const resourceSchema = z.object({
  resourceType: z.string().regex(/^[A-Z][A-Za-z]{1,63}$/),
  id: z.string().optional(),
  meta: z.object({ versionId: z.string().optional() }).optional(),
});

function bundleNotification(input: NotificationInput, json: object, ctx: { source: string; receivedAt: string }): Notification {
  const type = (json as { type?: unknown }).type;
  // HAPI's subscription-payload-search-criteria delivers a transaction Bundle; we do not support it (reference §3).
  if (type === "transaction") throw new AppError("invalid", "transaction Bundles (HAPI payload-search-criteria) are not supported; subscribe without that extension", "Bundle.type");
  if (type !== "history" && type !== "subscription-notification") {
    throw new AppError("structure", "only history and subscription-notification Bundles are accepted", "Bundle.type");
  }
  const parsed = parseTopicBundle(json, ctx);
  switch (parsed.kind) {
    case "handshake":
    case "heartbeat":
    case "query-status":
      return { kind: parsed.kind, topic: parsed.topic };
    case "events":
      // payload "empty": the server says how many events happened but not which (reference §5.4).
      if (parsed.events.length === 0) return { kind: "ping", topic: parsed.topic };
      return { ...filterTypes(input.sourceConfig, parsed.events), topic: parsed.topic };
  }
}

/** Medplum sends the literal `{}` for deletes and names the resource in a header (reference §4.1). */
function medplumEmptyBody(input: NotificationInput, ctx: { source: string; receivedAt: string }): Notification {
  if (input.header("x-medplum-interaction")?.trim().toLowerCase() !== "delete") return { kind: "ping" };
  const deleted = input.header("x-medplum-deleted-resource");
  if (deleted === undefined) throw new AppError("required", "X-Medplum-Deleted-Resource header is missing on a delete", "X-Medplum-Deleted-Resource");
  const ref = parseReference(deleted.trim());
  if (ref === undefined || !isFhirResourceType(ref.resourceType)) {
    throw new AppError("invalid", "X-Medplum-Deleted-Resource is not Type/id", "X-Medplum-Deleted-Resource");
  }
  return filterTypes(input.sourceConfig, [{ ...ctx, resourceType: ref.resourceType, id: ref.id, interaction: "delete", shape: "medplum" }]);
}

function filterTypes(cfg: SourceConfig, events: readonly ResourceEvent[]): Extract<Notification, { kind: "events" }> {
  const handled: readonly string[] = cfg.resourceTypes;
  const kept = events.filter((e) => handled.includes(e.resourceType));
  const ignored = events.length - kept.length;
  if (ignored > 0 && cfg.unhandledTypes === "reject") {
    throw new AppError("invalid", "notification is about a resource type this source does not handle", "resourceType");
  }
  return { kind: "events", events: kept, ignored };
}

function pathRef(input: NotificationInput): { resourceType: string; id: string } | undefined {
  if (input.pathType === undefined && input.pathId === undefined) return undefined;
  if (input.pathType === undefined || !isFhirResourceType(input.pathType)) throw new AppError("invalid", "the type in the URL is not a FHIR resource type", "resourceType");
  if (input.pathId === undefined || !isFhirId(input.pathId)) throw new AppError("invalid", "the id in the URL is not a valid FHIR id", `${input.pathType}.id`);
  return { resourceType: input.pathType, id: input.pathId };
}

function isMedplum(input: NotificationInput): boolean {
  return input.header("x-medplum-interaction") !== undefined || input.header("x-medplum-subscription") !== undefined;
}

function interactionOf(input: NotificationInput): Interaction {
  const medplum = input.header("x-medplum-interaction")?.trim().toLowerCase();
  if (medplum === "create" || medplum === "update" || medplum === "delete") return medplum;
  switch (input.method) {
    case "DELETE":
      return "delete";
    case "PUT":
      // HAPI PUTs creates too (reference §3); trigger rules look at status changes, not at this.
      return "update";
    case "POST":
      return "unknown";
  }
}

function checkContentType(contentType: string | undefined): void {
  const media = contentType?.split(";", 1)[0]?.trim().toLowerCase();
  if (media === undefined || media === "") throw new AppError("not-supported", "Content-Type is required when there is a body; use application/fhir+json");
  if (!jsonMediaTypes.has(media)) throw new AppError("not-supported", "unsupported Content-Type; use application/fhir+json or application/json");
}

function isBlank(raw: Uint8Array): boolean {
  // A body of only whitespace carries no more than an empty one; some proxies add a newline.
  return raw.every((b) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09);
}

function parseJson(raw: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
  } catch {
    throw new AppError("structure", "body is not valid UTF-8 JSON");
  }
}
