import { z } from "zod";
import { AppError } from "../shared/app-error.js";
import { isFhirResourceType } from "./fhir-resource-types.js";
import type { NotificationShape, ResourceEvent } from "./resource-event.js";
import { definedOnly, parseShape } from "./parse-shape.js";
import { isFhirId, parseReference, type ResourceRef } from "./resource-ref.js";

/** What a topic-based notification says about its subscription; the gap tracker works from this. */
export interface TopicInfo {
  /** Always `Subscription/{id}`, whatever form the server used. */
  subscriptionRef: string;
  status?: string;
  type: string;
  eventsSinceStart?: string;
  eventNumbers: string[];
  topicUrl?: string;
}

type TopicNotification =
  | { kind: "handshake" | "heartbeat" | "query-status"; topic: TopicInfo; shape: TopicShape }
  | { kind: "events"; topic: TopicInfo; shape: TopicShape; events: ResourceEvent[] };

type TopicShape = Extract<NotificationShape, "topic-r4" | "topic-r4b" | "topic-r5">;

const notificationTypes = ["handshake", "heartbeat", "event-notification", "query-status", "query-event"] as const;

/** R5 declares the counters integer64 (a JSON string), R4/R4B string; some servers send numbers anyway. */
const counter = z.union([z.string().regex(/^\d{1,18}$/), z.number().int().nonnegative()]).transform(String);
const reference = z.object({ reference: z.string().min(1) });

const entrySchema = z.object({
  fullUrl: z.string().optional(),
  resource: z.object({ resourceType: z.string(), id: z.string().optional(), meta: z.object({ versionId: z.string().optional() }).optional() }).loose().optional(),
  request: z.object({ url: z.string().optional() }).optional(),
});
type Entry = z.output<typeof entrySchema>;

const bundleSchema = z.object({
  type: z.string(),
  entry: z.array(entrySchema).min(1),
});

interface NotificationEvent {
  eventNumber?: string;
  focus?: string;
}

interface StatusContent {
  subscription: string;
  status?: string;
  type: string;
  eventsSinceStart?: string;
  topicUrl?: string;
  events: NotificationEvent[];
}

const base = "Bundle.entry[0].resource";

// R4 backport: the same content as SubscriptionStatus, spelled as Parameters slices.
const valueSchema = z.object({
  name: z.string(),
  valueReference: reference.optional(),
  valueCanonical: z.string().optional(),
  valueUri: z.string().optional(),
  valueCode: z.string().optional(),
  valueString: z.string().optional(),
  valueInteger: z.number().optional(),
  valueUnsignedInt: z.number().optional(),
  valuePositiveInt: z.number().optional(),
  part: z.array(z.object({ name: z.string() }).loose()).optional(),
});
type Param = z.output<typeof valueSchema>;
const parametersSchema = z.object({ parameter: z.array(valueSchema).min(1) });

function counterOf(p: Param | undefined, expression: string): string | undefined {
  if (p === undefined) return undefined;
  const raw = p.valueString ?? p.valueInteger ?? p.valueUnsignedInt ?? p.valuePositiveInt;
  if (raw === undefined) return undefined;
  const parsed = counter.safeParse(raw);
  if (!parsed.success) throw new AppError("invalid", "event counter is not a non-negative integer", expression);
  return parsed.data;
}

function fromParameters(resource: unknown): StatusContent {
  const params = parseShape(parametersSchema, resource, base, "Parameters");
  const byName = (name: string) => params.parameter.find((p) => p.name === name);
  const subscription = byName("subscription")?.valueReference?.reference;
  const type = byName("type")?.valueCode;
  if (subscription === undefined) throw new AppError("required", "subscription parameter is missing", `${base}.parameter.where(name='subscription')`);
  if (type === undefined) throw new AppError("required", "type parameter is missing", `${base}.parameter.where(name='type')`);
  const events = params.parameter
    .filter((p) => p.name === "notification-event")
    .map((p, i): NotificationEvent => {
      const expression = `${base}.parameter.where(name='notification-event')[${i}]`;
      const parts = parseShape(z.array(valueSchema), p.part ?? [], `${expression}.part`, "notification-event");
      const eventNumber = counterOf(parts.find((x) => x.name === "event-number"), `${expression}.part.where(name='event-number')`);
      const focus = parts.find((x) => x.name === "focus")?.valueReference?.reference;
      return { ...(eventNumber !== undefined ? { eventNumber } : {}), ...(focus !== undefined ? { focus } : {}) };
    });
  const status = byName("status")?.valueCode;
  const topicUrl = byName("topic")?.valueCanonical ?? byName("topic")?.valueUri;
  const eventsSinceStart = counterOf(byName("events-since-subscription-start"), `${base}.parameter.where(name='events-since-subscription-start')`);
  return { subscription, type, events, ...definedOnly({ status, topicUrl, eventsSinceStart }) };
}

const subscriptionStatusSchema = z.object({
  status: z.string().optional(),
  type: z.string(),
  eventsSinceSubscriptionStart: counter.optional(),
  notificationEvent: z.array(z.object({ eventNumber: counter.optional(), focus: reference.optional() })).optional(),
  subscription: reference,
  topic: z.string().optional(),
});

function fromSubscriptionStatus(resource: unknown): StatusContent {
  const s = parseShape(subscriptionStatusSchema, resource, base, "SubscriptionStatus");
  return {
    subscription: s.subscription.reference,
    type: s.type,
    events: (s.notificationEvent ?? []).map((e) => definedOnly({ eventNumber: e.eventNumber, focus: e.focus?.reference })),
    ...definedOnly({ status: s.status, topicUrl: s.topic, eventsSinceStart: s.eventsSinceSubscriptionStart }),
  };
}

/**
 * A topic-based notification Bundle (backport R4, R4B or R5; reference §5.3) becomes the
 * subscription's status plus one hint per focus. Interactions stay "unknown": §5.3 warns that
 * `entry.request.method` does not say what happened, and the worker re-reads anyway.
 */
export function parseTopicBundle(input: unknown, ctx: { source: string; receivedAt: string }): TopicNotification {
  const bundle = parseShape(bundleSchema, input, "Bundle", "notification Bundle");
  const [first, ...rest] = bundle.entry;
  const firstType = first?.resource?.resourceType;
  let content: StatusContent;
  let shape: TopicShape;
  if (bundle.type === "history" && firstType === "Parameters") {
    content = fromParameters(first?.resource);
    shape = "topic-r4";
  } else if (bundle.type === "history" && firstType === "SubscriptionStatus") {
    content = fromSubscriptionStatus(first?.resource);
    shape = "topic-r4b";
  } else if (bundle.type === "subscription-notification" && firstType === "SubscriptionStatus") {
    content = fromSubscriptionStatus(first?.resource);
    shape = "topic-r5";
  } else {
    throw new AppError("invalid", "the first entry of a notification Bundle must be Parameters or SubscriptionStatus", base);
  }

  const subscriptionRef = parseReference(content.subscription);
  if (subscriptionRef?.resourceType !== "Subscription") {
    throw new AppError("invalid", "subscription is not a reference to a Subscription", `${base}.subscription`);
  }
  const topic: TopicInfo = {
    subscriptionRef: `Subscription/${subscriptionRef.id}`,
    type: content.type,
    eventNumbers: content.events.flatMap((e) => (e.eventNumber !== undefined ? [e.eventNumber] : [])),
    ...definedOnly({ status: content.status, eventsSinceStart: content.eventsSinceStart, topicUrl: content.topicUrl }),
  };

  const type = notificationTypes.find((t) => t === content.type);
  if (type === undefined) throw new AppError("invalid", "notification type is not one of handshake, heartbeat, event-notification, query-status, query-event", `${base}.type`);
  switch (type) {
    case "handshake":
    case "heartbeat":
    case "query-status":
      return { kind: type, topic, shape };
    case "event-notification":
    case "query-event": {
      const events = extractEvents(content.events, rest).map(
        (ref): ResourceEvent => ({ source: ctx.source, ...ref, interaction: "unknown", receivedAt: ctx.receivedAt, shape }),
      );
      return { kind: "events", topic, shape, events };
    }
  }
}

/**
 * §5.4: focus references first; for payloads that omit focus, the extra entries. A version comes
 * from a matching full-resource entry or from a `_history` reference.
 */
function extractEvents(events: readonly NotificationEvent[], entries: readonly Entry[]): Array<ResourceRef & { eventNumber?: string }> {
  const entryRefs = entries.map((e, i) => entryRef(e, i + 1));
  const found: Array<ResourceRef & { eventNumber?: string }> = [];
  events.forEach((e, i) => {
    if (e.focus === undefined) return;
    const expression = `${base}.notificationEvent[${i}].focus`;
    const byUrn = entryRefs.find((r) => r.fullUrl === e.focus)?.ref;
    const ref = byUrn ?? parseReference(e.focus);
    if (ref === undefined) throw new AppError("invalid", "focus cannot be resolved to Type/id", expression);
    checkType(ref.resourceType, expression);
    const entry = entryRefs.find((r) => r.ref?.resourceType === ref.resourceType && r.ref.id === ref.id)?.ref;
    const versionId = ref.versionId ?? entry?.versionId;
    found.push({ resourceType: ref.resourceType, id: ref.id, ...definedOnly({ versionId, eventNumber: e.eventNumber }) });
  });
  if (found.length === 0) {
    const onlyEvent = events.length === 1 ? events[0]?.eventNumber : undefined;
    for (const r of entryRefs) if (r.ref !== undefined) found.push({ ...r.ref, ...definedOnly({ eventNumber: onlyEvent }) });
  }
  const seen = new Set<string>();
  return found.filter((r) => {
    const key = `${r.resourceType}/${r.id}/${r.versionId ?? ""}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function entryRef(entry: Entry, index: number): { fullUrl?: string; ref?: ResourceRef } {
  const expression = `Bundle.entry[${index}]`;
  const fromUrl = entry.fullUrl !== undefined ? parseReference(entry.fullUrl) : undefined;
  const resource = entry.resource;
  let ref: ResourceRef | undefined;
  if (resource?.id !== undefined) {
    if (!isFhirId(resource.id)) throw new AppError("invalid", "resource id is not a valid FHIR id", `${expression}.resource.id`);
    const versionId = resource.meta?.versionId ?? fromUrl?.versionId;
    ref = { resourceType: resource.resourceType, id: resource.id, ...definedOnly({ versionId }) };
  } else {
    ref = fromUrl ?? (entry.request?.url !== undefined ? parseReference(entry.request.url) : undefined);
  }
  if (ref !== undefined) checkType(ref.resourceType, expression);
  return { ...definedOnly({ fullUrl: entry.fullUrl, ref }) };
}

function checkType(resourceType: string, expression: string): void {
  if (!isFhirResourceType(resourceType)) throw new AppError("invalid", "reference names an unknown resource type", expression);
}
