import type { CodeableConcept, Coding, Communication, Extension, Identifier, Meta, Reference } from "fhir/r4";
import type { DeliveryRecord, DeliveryState } from "../delivery/delivery-record.js";
import type { NotDoneReason } from "../shared/not-done-reason.js";
import { nextState, toCommunicationStatus } from "../delivery/delivery-state.js";
import { notDoneReasonFor } from "../delivery/whatsapp/status.map.js";
import type { TemplateHoldCode } from "../delivery/template-holds.js";
import { guardRules } from "../mapping/leak-guard.js";
import { isSlotName } from "../mapping/slots.js";
import type { AuditOptions } from "./audit.config.js";

/*
 * Pure builders from our delivery ledger to R4 Communication (fhir-notifications.md §10,
 * whatsapp-cloud-api.md §10.7). What may appear: ids, references, codes, timestamps, the template
 * name and the rendered text that was actually sent (safe slots only). Never reasonCode or
 * reasonReference: they would copy clinical reasons into the audit trail.
 */

const notDoneReasonSystem = "http://terminology.hl7.org/CodeSystem/communication-not-done-reason";
const categorySystem = "http://terminology.hl7.org/CodeSystem/communication-category";
const participationModeSystem = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode";

type NotDoneCode = "unknown" | "system-error" | "invalid-phone-number" | "recipient-unavailable" | "family-objection" | "patient-objection";

const fhirId = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * A relative reference of one of the allowed types. Throws (naming the field, never the value) so
 * a malformed ledger entry fails the audit job instead of writing a wrong reference.
 */
export function relativeReference(ref: string, allowed: readonly string[], field: string): Reference {
  const [type, id, ...rest] = ref.split("/");
  if (rest.length > 0 || type === undefined || id === undefined || !allowed.includes(type) || !fhirId.test(id)) {
    throw new RangeError(`${field} must be a reference to ${allowed.join(" or ")}`);
  }
  return { reference: `${type}/${id}` };
}

function dateTime(value: string, field: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new RangeError(`${field} must be an ISO date-time`);
  return new Date(ms).toISOString();
}

/** Fixed, PHI-free explanation and coded reason for each reason a message was not delivered. */
function notDoneReason(
  reason: NotDoneReason | undefined,
  vendorCode: number | undefined,
  hold: TemplateHoldCode | undefined,
  missingSlot: string | undefined,
  phiGuard: DeliveryRecord["phiGuard"],
): { code: NotDoneCode; text: string } {
  if (reason === undefined) return { code: "unknown", text: "The message was not sent; no reason was recorded" };
  switch (reason) {
    case "no-consent":
      return { code: "patient-objection", text: "The patient has not agreed to receive WhatsApp messages" };
    case "opted-out":
      return { code: "patient-objection", text: "The patient opted out of WhatsApp messages" };
    case "no-mobile-number":
      return { code: "invalid-phone-number", text: "The patient has no mobile number on file" };
    case "invalid-phone-number":
      return { code: "invalid-phone-number", text: "The patient's phone number cannot receive WhatsApp messages" };
    case "whatsapp-permanent":
      // Without a code (a failed webhook without errors[]) we cannot say whose fault it was.
      return { code: vendorCode === undefined ? "system-error" : notDoneReasonFor(vendorCode), text: "WhatsApp reported the message as failed" };
    case "expired":
      return { code: "recipient-unavailable", text: "WhatsApp did not confirm delivery before the message expired" };
    case "no-template-for-language":
      return { code: "system-error", text: "No approved template exists for the patient's language" };
    case "phi-guard":
      return { code: "system-error", text: `The message was blocked by the protected-information guard${phiGuardNames(phiGuard)}` };
    case "missing-value": {
      // Only a known slot name is written: the field comes from our ledger, but never copy free text.
      const slot = missingSlot !== undefined && isSlotName(missingSlot) ? `: ${missingSlot}` : "";
      return { code: "system-error", text: `A value the message needs is not on record or not configured${slot}` };
    }
    case "sender-halted":
      return { code: "system-error", text: "Sending was halted for the sending phone number" };
    case "system-error":
      return { code: "system-error", text: "A system error prevented sending" };
    case "template-held":
      return { code: "system-error", text: templateHoldText(hold) };
    case "answered":
      return { code: "unknown", text: "The patient's reply already answered what this message would have asked" };
    case "patient-inactive":
      return { code: "unknown", text: "The patient record is inactive" };
    case "no-patient":
      return { code: "unknown", text: "No patient could be resolved for the resource" };
    case "resource-gone":
      return { code: "unknown", text: "The triggering resource no longer exists" };
    case "no-longer-applies":
      return { code: "unknown", text: "The notification no longer applied when it was due" };
    case "superseded":
      return { code: "unknown", text: "A newer notification replaced this one" };
    case "past-due":
      return { code: "unknown", text: "The send deadline passed before the message could be sent" };
  }
}

/** Why Meta's decision about the template stopped the message, in fixed words. */
function templateHoldText(hold: TemplateHoldCode | undefined): string {
  switch (hold) {
    case undefined:
      return "WhatsApp took the message template out of use";
    case "paused":
      return "WhatsApp paused the message template for low quality and it was not resumed in time";
    case "disabled":
      return "WhatsApp disabled the message template";
    case "rejected":
      return "WhatsApp rejected the message template";
    case "pending-deletion":
    case "deleted":
      return "The message template was deleted at WhatsApp";
    case "archived":
      return "The message template was archived at WhatsApp";
    case "not-utility":
      return "WhatsApp recategorised the message template out of UTILITY (e.g. as MARKETING); it is not sent";
  }
}

/** The reason to report: the recorded one, else what the terminal state itself implies. */
function effectiveReason(record: DeliveryRecord): NotDoneReason | undefined {
  if (record.reason !== undefined) return record.reason;
  switch (record.state) {
    case "failed":
      return "whatsapp-permanent";
    case "expired":
      return "expired";
    case "not-done":
    case "queued":
    case "dispatching":
    case "unknown":
    case "accepted":
    case "held":
    case "sent":
    case "delivered":
    case "read":
      return undefined;
  }
}

/**
 * ": slot locationLabel, guard rule clinical-text, element Appointment.serviceType". Only names
 * the mapping itself produces are written (a known slot and guard rule, an element name shaped
 * Type.element); anything else in the ledger is left out rather than copied into the record.
 */
function phiGuardNames(block: DeliveryRecord["phiGuard"]): string {
  if (block === undefined || !isSlotName(block.slot) || !(guardRules as readonly string[]).includes(block.rule)) return "";
  const element = block.element !== undefined && /^[A-Z][A-Za-z]{1,40}\.[a-z][A-Za-z]{1,40}$/.test(block.element) ? `, element ${block.element}` : "";
  return `: slot ${block.slot}, guard rule ${block.rule}${element}`;
}

function statusReason(record: DeliveryRecord): CodeableConcept {
  const { code, text } = notDoneReason(effectiveReason(record), record.vendorCode, record.templateHold, record.missingSlot, record.phiGuard);
  return { coding: [{ system: notDoneReasonSystem, code }], text };
}

/** True once WhatsApp has the message, i.e. the rendered text really left fhir-notify. */
function wasHandedOver(record: DeliveryRecord): boolean {
  if (record.sentAt !== undefined) return true;
  switch (record.state) {
    case "accepted":
    case "held":
    case "sent":
    case "delivered":
    case "read":
      return true;
    case "queued":
    case "dispatching":
    case "unknown":
    case "failed":
    case "not-done":
    case "expired":
      return false;
  }
}

/**
 * Unversioned on purpose (fhir-notifications.md §10.5): servers that match references as plain
 * strings would not find `Appointment/1/_history/4` for `Communication?about=Appointment/1`.
 * The triggering version is kept in the resource-version extension instead.
 */
function aboutReference(record: DeliveryRecord): Reference {
  return relativeReference(record.resourceRef, ["Appointment", "MedicationDispense", "MedicationRequest", "DiagnosticReport"], "resourceRef");
}

function mediumConcept(opts: AuditOptions): CodeableConcept {
  return { coding: [{ system: participationModeSystem, code: opts.medium }], text: "WhatsApp" };
}

function dryRunTag(opts: AuditOptions): Coding {
  return { system: opts.tagSystem, code: "dry-run" };
}

/** Extension URLs this builder owns; single-valued except delivery-event (one per ledger event). */
function extensionUrls(opts: AuditOptions) {
  return {
    ruleId: `${opts.extensionBase}rule-id`,
    rulesHash: `${opts.extensionBase}rules-hash`,
    readAt: `${opts.extensionBase}read-at`,
    resourceVersion: `${opts.extensionBase}resource-version`,
    deliveryEvent: `${opts.extensionBase}delivery-event`,
    pricing: `${opts.extensionBase}pricing`,
  };
}

const fhirCode = /^[A-Za-z0-9_.-]{1,64}$/;

/** What WhatsApp charges for the message: category, model, type (codes) and billable. */
function pricingExtension(url: string, pricing: NonNullable<DeliveryRecord["pricing"]>): Extension | undefined {
  const codes = (["category", "model", "type"] as const).flatMap((k) => {
    const v = pricing[k];
    return v !== undefined && fhirCode.test(v) ? [{ url: k, valueCode: v }] : [];
  });
  const parts: Extension[] = [...codes, ...(pricing.billable !== undefined ? [{ url: "billable", valueBoolean: pricing.billable }] : [])];
  return parts.length > 0 ? { url, extension: parts } : undefined;
}

function buildExtensions(record: DeliveryRecord, opts: AuditOptions): Extension[] {
  const urls = extensionUrls(opts);
  const history = record.history.map(
    (event, i): Extension => ({
      url: urls.deliveryEvent,
      extension: [
        { url: "state", valueCode: event.state },
        { url: "at", valueDateTime: dateTime(event.at, `history[${i}].at`) },
        ...(event.code !== undefined ? [{ url: "code", valueInteger: event.code }] : []),
      ],
    }),
  );
  return [
    { url: urls.ruleId, valueString: record.ruleId },
    { url: urls.rulesHash, valueString: record.rulesHash },
    // The version of the `about` resource that triggered the message; only a valid id is kept.
    ...(record.resourceVersion !== undefined && fhirId.test(record.resourceVersion) ? [{ url: urls.resourceVersion, valueId: record.resourceVersion }] : []),
    ...(record.readAt !== undefined ? [{ url: urls.readAt, valueDateTime: dateTime(record.readAt, "readAt") }] : []),
    ...(record.pricing !== undefined ? [pricingExtension(urls.pricing, record.pricing)].filter((e): e is Extension => e !== undefined) : []),
    ...history,
  ];
}

/** The Communication that audits one delivery in its current state. */
export function buildCommunication(record: DeliveryRecord, opts: AuditOptions): Communication {
  const status = toCommunicationStatus(record.state);
  const patient = record.patientRef === undefined ? undefined : relativeReference(record.patientRef, ["Patient"], "patientRef");
  const sender = record.senderRef === undefined ? undefined : relativeReference(record.senderRef, ["Organization", "Device"], "senderRef");
  const receivedAt = record.deliveredAt ?? record.readAt;
  const identifier: Identifier[] = [
    { system: opts.identifierSystem, value: record.deliveryId },
    ...(record.wamid !== undefined ? [{ system: opts.wamidSystem, value: record.wamid }] : []),
  ];
  const hasPayload = wasHandedOver(record) && record.renderedText !== undefined && record.renderedText.length > 0;

  return {
    resourceType: "Communication",
    ...(record.dryRun === true ? { meta: { tag: [dryRunTag(opts)] } } : {}),
    extension: buildExtensions(record, opts),
    identifier,
    status,
    ...(status === "not-done" ? { statusReason: statusReason(record) } : {}),
    category: [{ coding: [{ system: categorySystem, code: record.category }] }],
    priority: "routine",
    medium: [mediumConcept(opts)],
    ...(patient !== undefined ? { subject: patient } : {}),
    topic: { text: record.templateName },
    about: [aboutReference(record)],
    ...(record.sentAt !== undefined ? { sent: dateTime(record.sentAt, "sentAt") } : {}),
    ...(receivedAt !== undefined ? { received: dateTime(receivedAt, "receivedAt") } : {}),
    ...(patient !== undefined ? { recipient: [patient] } : {}),
    ...(sender !== undefined ? { sender } : {}),
    ...(hasPayload ? { payload: [{ contentString: record.renderedText }] } : {}),
    ...(status === "not-done" && record.vendorCode !== undefined ? { note: [{ text: `WhatsApp error code ${record.vendorCode}` }] } : {}),
  };
}

/**
 * The delivery state a Communication.status stands for, to compare two of them by rank.
 * on-hold is what the audit worker writes while a delivery waits in the dead-letter queue: it
 * ranks with preparation, so any progress replaces it. stopped and entered-in-error are never
 * written by fhir-notify: someone at the hospital set them, so they are kept (undefined here).
 */
function stateForStatus(status: Communication["status"]): DeliveryState | undefined {
  switch (status) {
    case "preparation":
    case "on-hold":
      return "queued";
    case "unknown":
      return "unknown";
    case "in-progress":
      return "sent";
    case "completed":
      return "read";
    case "not-done":
      return "not-done";
    case "stopped":
    case "entered-in-error":
      return undefined;
  }
}

function existingStatusWins(existing: Communication["status"], built: Communication["status"]): boolean {
  const from = stateForStatus(existing);
  const to = stateForStatus(built);
  if (from === undefined) return true;
  if (to === undefined) return false;
  return from !== to && nextState(from, to) === from;
}

function earlierDateTime(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Date.parse(b) < Date.parse(a) ? b : a;
}

function union<T>(first: readonly T[] | undefined, second: readonly T[] | undefined, key: (item: T) => string): T[] {
  const seen = new Set<string>();
  const out: T[] = [];
  for (const item of [...(first ?? []), ...(second ?? [])]) {
    const k = key(item);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(item);
  }
  return out;
}

function mergeMeta(existing: Meta | undefined, built: Meta | undefined): Meta | undefined {
  if (existing === undefined) return built;
  const tag = union(existing.tag, built?.tag, (c) => `${c.system ?? ""}|${c.code ?? ""}`);
  return { ...existing, ...(tag.length > 0 ? { tag } : {}) };
}

/**
 * Our extensions that hold one value take the freshly built value; delivery events accumulate;
 * extensions other systems added to the resource are kept.
 */
function mergeExtensions(existing: readonly Extension[] | undefined, built: readonly Extension[] | undefined): Extension[] {
  const builtSingles = new Set((built ?? []).filter((e) => !e.url.endsWith("/delivery-event")).map((e) => e.url));
  const kept = (existing ?? []).filter((e) => !builtSingles.has(e.url));
  return union(built, kept, (e) => JSON.stringify(e));
}

/**
 * The resource to PUT when `existing` is already on the server: the server's id and meta (for
 * If-Match), identifiers and notes from both, the earliest sent/received, and a status that never
 * moves down the delivery rank (a stale projection cannot turn completed back into in-progress).
 */
export function mergeForUpdate(existing: Communication, built: Communication): Communication {
  const statusFrom = existingStatusWins(existing.status, built.status) ? existing : built;
  const other = statusFrom === existing ? built : existing;
  // A reason belongs to the status it explains; only a not-done without one borrows the other's.
  const reason = statusFrom.statusReason ?? (statusFrom.status === "not-done" && other.status === "not-done" ? other.statusReason : undefined);
  const meta = mergeMeta(existing.meta, built.meta);
  const sent = earlierDateTime(existing.sent, built.sent);
  const received = earlierDateTime(existing.received, built.received);
  const payload = built.payload ?? existing.payload;
  const note = union(existing.note, built.note, (n) => n.text);
  const extension = mergeExtensions(existing.extension, built.extension);

  const { statusReason: _builtReason, sent: _s, received: _r, payload: _p, note: _n, meta: _m, extension: _e, ...rest } = built;
  return {
    ...rest,
    ...(existing.id !== undefined ? { id: existing.id } : {}),
    ...(meta !== undefined ? { meta } : {}),
    ...(extension.length > 0 ? { extension } : {}),
    identifier: union(existing.identifier, built.identifier, (i) => `${i.system ?? ""}|${i.value ?? ""}`),
    status: statusFrom.status,
    ...(reason !== undefined ? { statusReason: reason } : {}),
    ...(sent !== undefined ? { sent } : {}),
    ...(received !== undefined ? { received } : {}),
    ...(payload !== undefined ? { payload } : {}),
    ...(note.length > 0 ? { note } : {}),
  };
}

export type ReplyAction = "CONFIRM" | "RESCHEDULE" | "STOP" | "START";

/** A patient's quick-reply tap or STOP, already resolved to our references. */
export interface InboundReply {
  /** The inbound message's wamid: the idempotency key of everything a reply creates. */
  inboundWamid: string;
  action: ReplyAction;
  /** WhatsApp's timestamp of the patient's message. */
  sentAt: string;
  /** When fhir-notify received the webhook. */
  receivedAt: string;
  patientRef: string;
  /** The hospital Organization the reply was addressed to. */
  organizationRef?: string;
  /** "Communication/<id>" of the outbound message replied to; absent for a STOP typed without context. */
  outboundCommunicationRef?: string;
  /** The resource the outbound message was about, e.g. "Appointment/<id>". */
  aboutRef?: string;
}

const replyActions: ReadonlySet<string> = new Set<ReplyAction>(["CONFIRM", "RESCHEDULE", "STOP", "START"]);

/**
 * The Communication recording a patient's reply. Its payload is only the action token: whatever
 * the patient typed is never copied to the FHIR server.
 */
export function buildInboundCommunication(reply: InboundReply, opts: AuditOptions): Communication {
  // The type already says so; this guards a cast slipping free text into the payload.
  if (!replyActions.has(reply.action)) throw new RangeError("action must be a reply action token");
  const patient = relativeReference(reply.patientRef, ["Patient"], "patientRef");
  const organization = reply.organizationRef === undefined ? undefined : relativeReference(reply.organizationRef, ["Organization"], "organizationRef");
  const inResponseTo =
    reply.outboundCommunicationRef === undefined ? undefined : relativeReference(reply.outboundCommunicationRef, ["Communication"], "outboundCommunicationRef");
  const about = reply.aboutRef === undefined ? undefined : relativeReference(reply.aboutRef, ["Appointment", "MedicationDispense", "MedicationRequest", "DiagnosticReport"], "aboutRef");

  return {
    resourceType: "Communication",
    identifier: [{ system: opts.inboundIdSystem, value: reply.inboundWamid }],
    ...(inResponseTo !== undefined ? { inResponseTo: [inResponseTo] } : {}),
    status: "completed",
    medium: [mediumConcept(opts)],
    subject: patient,
    ...(about !== undefined ? { about: [about] } : {}),
    sent: dateTime(reply.sentAt, "sentAt"),
    received: dateTime(reply.receivedAt, "receivedAt"),
    ...(organization !== undefined ? { recipient: [organization] } : {}),
    sender: patient,
    payload: [{ contentString: reply.action }],
  };
}
