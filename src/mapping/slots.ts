import { createHmac } from "node:crypto";
import type { FhirResource, HumanName, Patient, Practitioner } from "fhir/r4";
import type { TriggerType } from "../shared/trigger-type.js";
import type { MappingConfig } from "./mapping.config.js";

/**
 * The safe-slot allowlist: the only values a message can carry. Each slot is a small function
 * over values already classed SAFE (fhir-notifications.md §8) or taken from site config.
 * A rule names slots; it can never name a resource field.
 */
export const slotNames = [
  "patientFirstName",
  "appointmentDate",
  "appointmentTime",
  "locationLabel",
  "practitionerName",
  "pharmacyName",
  "pharmacyAddressLine",
  "pharmacyHours",
  "organizationPhone",
  "organizationName",
  "portalLink",
] as const;
export type SlotName = (typeof slotNames)[number];

export function isSlotName(name: string): name is SlotName {
  return (slotNames as readonly string[]).includes(name);
}

export type PharmacyEntry = MappingConfig["pharmacies"][string];

export interface SlotContext {
  readonly resource: FhirResource;
  readonly patient: Patient;
  readonly site: MappingConfig;
  /** BCP-47 locale for Intl, derived from the template language (en_US → en-US). */
  readonly locale: string;
  readonly timeZone: string;
  /** "Location/id" of the appointment's Location participant, when there is one. */
  readonly locationRef: string | undefined;
  readonly practitioner: Practitioner | undefined;
  readonly pharmacy: PharmacyEntry | undefined;
  /** The delivery id; tokens are derived from it so the portal link and replies correlate without naming a resource. */
  readonly callbackData: string;
}

const appointmentOnly: readonly TriggerType[] = ["Appointment"];
const pharmacyTypes: readonly TriggerType[] = ["MedicationDispense", "MedicationRequest", "Task"];
const anyType: readonly TriggerType[] = ["Appointment", "MedicationDispense", "MedicationRequest", "DiagnosticReport", "Task"];

/** Which resource types a slot can be filled for; the loader rejects the rest. */
export const slotAppliesTo: Record<SlotName, readonly TriggerType[]> = {
  patientFirstName: anyType,
  appointmentDate: appointmentOnly,
  appointmentTime: appointmentOnly,
  locationLabel: appointmentOnly,
  practitionerName: appointmentOnly,
  pharmacyName: pharmacyTypes,
  pharmacyAddressLine: pharmacyTypes,
  pharmacyHours: pharmacyTypes,
  organizationPhone: anyType,
  organizationName: anyType,
  portalLink: anyType,
};

/** undefined means "no safe value": the message is not sent rather than sent with a gap. */
export function renderSlot(slot: SlotName, ctx: SlotContext): string | undefined {
  switch (slot) {
    case "patientFirstName":
      return firstGivenName(ctx.patient.name);
    case "appointmentDate":
      return formatStart(ctx, "date");
    case "appointmentTime":
      return formatStart(ctx, "time");
    case "locationLabel":
      // Only the configured public label: Location.name can reveal the service ("Oncology Day Unit").
      // An appointment with no Location at all (a phone visit, a clinic that books without one) is
      // at the organization; a Location without a configured label stays missing, so the site notices.
      if (ctx.locationRef === undefined) return ctx.site.organization.displayName;
      return ctx.site.locations[ctx.locationRef]?.label;
    case "practitionerName":
      return practitionerDisplay(ctx.practitioner);
    case "pharmacyName":
      return ctx.pharmacy?.name;
    case "pharmacyAddressLine":
      return ctx.pharmacy?.addressLine;
    case "pharmacyHours":
      return ctx.pharmacy?.hours;
    case "organizationPhone":
      return ctx.site.organization.phone;
    case "organizationName":
      return ctx.site.organization.displayName;
    case "portalLink":
      return ctx.site.portal.url;
  }
}

/** First given name only: usual → official → first listed (fhir-notifications.md §8.4). Never the family name. */
export function firstGivenName(names: readonly HumanName[] | undefined): string | undefined {
  if (!names || names.length === 0) return undefined;
  const pick = names.find((n) => n.use === "usual" && hasGiven(n)) ?? names.find((n) => n.use === "official" && hasGiven(n)) ?? names.find(hasGiven);
  const given = pick?.given?.find((g) => g.trim() !== "");
  // A given name may hold several words ("Ana Clara" in one element); the first word is the first name.
  return given?.trim().split(/\s+/)[0];
}

function hasGiven(n: HumanName): boolean {
  return (n.given ?? []).some((g) => g.trim() !== "");
}

/** "Dr. Lima": prefix and family name only, from the first usable name. */
function practitionerDisplay(practitioner: Practitioner | undefined): string | undefined {
  const name = practitioner?.name?.find((n) => n.family !== undefined && n.family.trim() !== "");
  if (!name?.family) return undefined;
  return [name.prefix?.[0], name.family].filter((p) => p !== undefined && p.trim() !== "").join(" ");
}

function formatStart(ctx: SlotContext, kind: "date" | "time"): string | undefined {
  if (ctx.resource.resourceType !== "Appointment") return undefined;
  const start = ctx.resource.start;
  if (start === undefined) return undefined;
  const instant = new Date(start);
  if (Number.isNaN(instant.getTime())) return undefined;
  return formatter(ctx.locale, ctx.timeZone, kind).format(instant);
}

/**
 * Intl.DateTimeFormat construction costs far more than formatting, and the set of
 * (locale, zone) pairs is small and fixed by config, so formatters are memoised.
 */
const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(locale: string, timeZone: string, kind: "date" | "time"): Intl.DateTimeFormat {
  const key = `${locale}|${timeZone}|${kind}`;
  let f = formatters.get(key);
  if (f === undefined) {
    f = new Intl.DateTimeFormat(
      locale,
      kind === "date" ? { weekday: "long", day: "numeric", month: "long", timeZone } : { hour: "numeric", minute: "2-digit", timeZone },
    );
    formatters.set(key, f);
  }
  return f;
}

/**
 * Opaque token for the URL button suffix: an HMAC of the delivery id, so the portal (which
 * shares the secret) can tie a click to a delivery, while the link names no resource or patient.
 */
export function portalLinkToken(site: MappingConfig, callbackData: string): string {
  return opaqueToken(site, `portal\u001f${callbackData}`, 12);
}

/**
 * The quick-reply actions a rule may give a button: exactly the answers the WhatsApp webhook
 * reads back (src/delivery/webhook-intake.ts replyAction). A payload word outside this list would
 * do nothing on the way back and could say something on the way out.
 */
export const replyActions = ["CONFIRM", "RESCHEDULE"] as const;
export type ReplyAction = (typeof replyActions)[number];

/** The shape every quick-reply payload has: a version, an action word, an opaque token. Nothing else. */
const replyPayloadPattern = new RegExp(`^fn1:(${replyActions.join("|")}):[A-Za-z0-9_-]{8}$`);

/**
 * The payload Meta echoes back when the patient taps a quick reply: "fn1:<ACTION>:<token>". Built
 * only from the allowlisted action word and the opaque reply token, never from rule or resource
 * data; anything else is a bug and throws rather than reaching Meta.
 */
export function replyPayload(action: ReplyAction, token: string): string {
  const payload = `fn1:${action}:${token}`;
  if (!replyPayloadPattern.test(payload)) throw new Error("quick-reply payload is not of the form fn1:<ACTION>:<token>");
  return payload;
}

/**
 * Token for quick-reply payloads (fn1:CONFIRM:<token>), one per message and shared by its
 * buttons. Replies are correlated by context.id → wamid; the token only makes forged payloads
 * detectable, and names nothing.
 */
export function replyToken(site: MappingConfig, callbackData: string): string {
  return opaqueToken(site, `reply\u001f${callbackData}`, 8);
}

function opaqueToken(site: MappingConfig, input: string, length: number): string {
  return createHmac("sha256", site.portal.tokenSecret ?? "fhir-notify-unkeyed").update(input).digest("base64url").slice(0, length);
}
