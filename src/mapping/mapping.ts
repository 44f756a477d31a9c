import type { Appointment, FhirResource, Location, MedicationRequest, Patient, Practitioner } from "fhir/r4";
import type { NotDoneReason } from "../shared/not-done-reason.js";
import { isTimeZone } from "../shared/time-zone.js";
import type { TemplateButton, TemplateMessage } from "../shared/template-message.js";
import type { FhirPort } from "../fhir/fhir.port.js";
import { systemClock, type Clock } from "../shared/clock.js";
import { hasConsent } from "./consent.js";
import { findLeak, sanitiseParameter, sensitiveValues, type GuardRule } from "./leak-guard.js";
import { loadMappingSet, MappingError, type ChangeField, type Condition, type MappingSet, type Rule, type RuleMessage } from "./load-rules.js";
import type { MappingConfig } from "./mapping.config.js";
import { previousProjection, type PreviousProjection } from "./previous.js";
import { checkSiteLabels } from "./site-labels.js";
import { chooseLanguage, isPatientInactive, localeOf, patientRefOf, selectMobile } from "./recipient.js";
import { portalLinkToken, renderSlot, replyPayload, replyToken, type PharmacyEntry, type SlotName } from "./slots.js";
import { renderBody } from "./templates.js";

export { previousProjection, type PreviousProjection } from "./previous.js";

export interface MatchedRule {
  ruleId: string;
  action: "send" | "cancel-pending";
  category: "notification" | "reminder";
  templateName: string;
  /** Raw values (they may be dates); the lead hashes them into the delivery id. */
  distinctBy: string[];
  /** undefined = now */
  sendAt: Date | undefined;
  /** For cancel-pending: whose pending deliveries to cancel. */
  cancelsRuleId?: string;
}

/** Why the leak guard blocked a message: the slot, the guard rule and the element it matched ("Appointment.serviceType"). */
export interface PhiGuardBlock {
  slot: SlotName;
  rule: GuardRule;
  element?: string;
}

export type Prepared =
  | { ok: true; message: TemplateMessage; renderedText: string; patientRef: string; languageCode: string; timeZone: string; senderRef?: string }
  | { ok: false; reason: NotDoneReason; detail: string; patientRef?: string; missingSlot?: SlotName; phiGuard?: PhiGuardBlock };

/** "slot locationLabel matched clinical-text (Appointment.serviceType)": the fixed wording of a phi-guard block. */
export function describePhiGuard(block: PhiGuardBlock): string {
  return `slot ${block.slot} matched ${block.rule}${block.element !== undefined ? ` (${block.element})` : ""}`;
}

/** Why each rule did or did not fire; `fhir-notify preview` prints these. Reasons are fixed text. */
export interface RuleDecision {
  ruleId: string;
  fired: boolean;
  why: string;
  matches: MatchedRule[];
}

export interface Mapping {
  readonly rulesHash: string;
  readonly rules: readonly Rule[];
  /** Pure: which rules fire for this change. previous is the projection from previousProjection() or undefined. */
  match(resource: FhirResource, previous: PreviousProjection | undefined, now: Date): MatchedRule[];
  /** match(), with the reason for every rule of the resource's type, fired or not. */
  explain(resource: FhirResource, previous: PreviousProjection | undefined, now: Date): RuleDecision[];
  /** Before each send attempt: does the rule's trigger still hold on the re-read resource, with the same distinct values? */
  stillApplies(ruleId: string, resource: FhirResource, distinctBy: readonly string[]): boolean;
  /** IO via FhirPort: patient, referenced Location/Practitioner/MedicationRequest, consent; then render + leak guard. */
  prepare(ruleId: string, resource: FhirResource, fhir: FhirPort, callbackData: string): Promise<Prepared>;
}

/** Per-slot length caps; WhatsApp has no per-variable limit, but a name or place longer than this is a data problem. */
const maxLength: Record<SlotName, number> = {
  patientFirstName: 40,
  appointmentDate: 60,
  appointmentTime: 20,
  locationLabel: 60,
  practitionerName: 60,
  pharmacyName: 60,
  pharmacyAddressLine: 60,
  pharmacyHours: 60,
  organizationPhone: 30,
  organizationName: 60,
  portalLink: 200,
};

const timezoneExtension = "http://hl7.org/fhir/StructureDefinition/timezone";

export function createMapping(set: MappingSet, site: MappingConfig, clock: Clock = systemClock): Mapping {
  const active = set.rules.filter((r) => r.enabled && (r.signal === undefined || r.signal === site.prescriptionReadySignal));
  checkAgainstSite(active, site);
  const byType = new Map<string, Rule[]>();
  for (const rule of active) byType.set(rule.resourceType, [...(byType.get(rule.resourceType) ?? []), rule]);
  const byId = new Map(active.map((r) => [r.id, r]));
  const allById = new Map(set.rules.map((r) => [r.id, r]));

  const explain = (resource: FhirResource, previous: PreviousProjection | undefined, now: Date): RuleDecision[] => {
    // Rules often share a trigger (booked → confirmation and reminder); evaluate each expression once.
    const memo = new Map<Condition, boolean>();
    const holds = (c: Condition): boolean => {
      let v = memo.get(c);
      if (v === undefined) {
        v = isTrue(c.evaluate(resource, previous, now));
        memo.set(c, v);
      }
      return v;
    };
    return (byType.get(resource.resourceType) ?? []).map((rule) => decide(rule, resource, previous, now, holds));
  };

  const decide = (
    rule: Rule,
    resource: FhirResource,
    previous: PreviousProjection | undefined,
    now: Date,
    holds: (c: Condition) => boolean,
  ): RuleDecision => {
    const no = (why: string): RuleDecision => ({ ruleId: rule.id, fired: false, why, matches: [] });
    const failed = rule.when.findIndex((c) => !holds(c));
    if (failed >= 0) return no(rule.when.length === 1 ? "trigger.when is false" : `trigger.when[${failed}] is false`);
    if (rule.changes.length > 0 && previous !== undefined && !rule.changes.some((f) => changed(f, resource, previous))) {
      return no(`trigger.changes: none of ${rule.changes.join(", ")} changed`);
    }
    if (!rule.changedFrom.every(holds)) return no("trigger.changedFrom is false (nothing relevant changed)");
    const suppressedBy = rule.suppress.findIndex(holds);
    if (suppressedBy >= 0) return no(`suppressed by suppress[${suppressedBy}]`);
    if (rule.message === undefined) {
      const matches = rule.cancels.map((target): MatchedRule => {
        const t = allById.get(target)?.message;
        return {
          ruleId: rule.id,
          action: "cancel-pending",
          category: t?.category ?? "notification",
          templateName: t?.template.name ?? "",
          distinctBy: [],
          sendAt: undefined,
          cancelsRuleId: target,
        };
      });
      return { ruleId: rule.id, fired: true, why: `cancels pending deliveries of ${rule.cancels.join(", ")}`, matches };
    }
    // Every message needs a recipient; testing it here keeps rules short and costs no FHIRPath.
    if (patientRefOf(resource) === undefined) return no("the resource names no patient recipient");
    const timing = sendTime(rule.message, resource, now, site);
    if (!timing.ok) return no(timing.why);
    const match: MatchedRule = {
      ruleId: rule.id,
      action: "send",
      category: rule.message.category,
      templateName: rule.message.template.name,
      distinctBy: distinctValues(rule.message, resource, now),
      sendAt: timing.at,
    };
    return { ruleId: rule.id, fired: true, why: timing.at === undefined ? "send now" : "scheduled before start", matches: [match] };
  };

  return {
    rulesHash: set.rulesHash,
    rules: set.rules,
    explain,
    match: (resource, previous, now) => explain(resource, previous, now).flatMap((d) => d.matches),

    stillApplies(ruleId, resource, distinctBy) {
      const rule = byId.get(ruleId);
      if (rule?.message === undefined || rule.resourceType !== resource.resourceType || patientRefOf(resource) === undefined) return false;
      const now = clock.now();
      if (!rule.when.every((c) => isTrue(c.evaluate(resource, undefined, now)))) return false;
      if (rule.suppress.some((c) => isTrue(c.evaluate(resource, undefined, now)))) return false;
      if (rule.message.send.kind === "before-start" && !startsInFuture(resource, now)) return false;
      const current = distinctValues(rule.message, resource, now);
      return current.length === distinctBy.length && current.every((v, i) => v === distinctBy[i]);
    },

    async prepare(ruleId, resource, fhir, callbackData) {
      const message = byId.get(ruleId)?.message;
      if (message === undefined) return { ok: false, reason: "no-longer-applies", detail: "the rule is not active" };
      const patientRef = patientRefOf(resource);
      if (patientRef === undefined) return { ok: false, reason: "no-patient", detail: "the resource names no patient recipient" };
      const patient = await fhir.read<Patient>("Patient", patientRef.slice("Patient/".length));
      if (patient?.id === undefined) return { ok: false, reason: "no-patient", detail: "the patient could not be read", patientRef };
      if (isPatientInactive(patient)) return { ok: false, reason: "patient-inactive", detail: "the patient is inactive or deceased", patientRef };

      const languageCode = chooseLanguage(patient, site, new Set(message.template.languages.keys()));
      const lang = languageCode !== undefined ? message.template.languages.get(languageCode) : undefined;
      if (languageCode === undefined || lang === undefined) {
        return { ok: false, reason: "no-template-for-language", detail: "no template translation for the patient's language", patientRef };
      }
      const now = clock.now();
      const mobile = selectMobile(patient, site.defaultRegion, now);
      if (!mobile.ok) {
        const detail = mobile.reason === "no-mobile-number" ? "the patient has no current mobile number" : "the patient's mobile number is not valid";
        return { ok: false, reason: mobile.reason, detail, patientRef };
      }
      if (!(await hasConsent(patient as Patient & { id: string }, fhir, site, now))) {
        return { ok: false, reason: "no-consent", detail: "no active WhatsApp opt-in for this patient", patientRef };
      }

      const refs = await readReferences(message, resource, fhir, site);
      const slotCtx = {
        resource,
        patient,
        site,
        locale: localeOf(languageCode),
        timeZone: refs.timeZone,
        locationRef: refs.locationRef,
        practitioner: refs.practitioner,
        pharmacy: refs.pharmacy,
        callbackData,
      };
      const values: string[] = [];
      for (const slot of message.slots) {
        const raw = renderSlot(slot, slotCtx);
        const value = raw === undefined ? undefined : sanitiseParameter(raw, maxLength[slot]);
        // The slot's name (never its value) says what to fix: a Location label, a pharmacy, a phone.
        if (value === undefined) return { ok: false, reason: "missing-value", detail: `no value for slot ${slot}`, patientRef, missingSlot: slot };
        values.push(value);
      }
      const sensitive = sensitiveValues([resource, patient, refs.location, refs.practitioner, refs.prescription]);
      for (const [i, value] of values.entries()) {
        const hit = findLeak(value, sensitive);
        const slot = message.slots[i];
        if (hit !== undefined && slot !== undefined) {
          // Names only: which slot, which guard rule, which element it matched. Never the value.
          const phiGuard: PhiGuardBlock = { slot, rule: hit.rule, ...(hit.element !== undefined ? { element: hit.element } : {}) };
          return { ok: false, reason: "phi-guard", detail: describePhiGuard(phiGuard), patientRef, phiGuard };
        }
      }

      let token: string | undefined;
      const buttons = message.buttons.map((b, index): TemplateButton => {
        if ("link" in b) return { subType: "url", index, text: portalLinkToken(site, callbackData) };
        token ??= replyToken(site, callbackData);
        return { subType: "quick_reply", index, payload: replyPayload(b.reply, token) };
      });
      return {
        ok: true,
        message: { to: mobile.e164, templateName: message.template.name, languageCode, bodyParameters: values, buttons, callbackData },
        renderedText: renderBody(lang, values),
        patientRef,
        languageCode,
        timeZone: refs.timeZone,
        ...(site.organization.reference !== undefined ? { senderRef: site.organization.reference } : {}),
      };
    },
  };
}

/** Compare one kept field of the current resource with the previous projection; instants by value, not by spelling. */
function changed(field: ChangeField, resource: FhirResource, previous: PreviousProjection): boolean {
  const now = previousProjection(resource);
  switch (field) {
    case "start":
    case "end":
    case "issued": {
      const a = now[field];
      const b = previous[field];
      if (a === undefined || b === undefined) return a !== b;
      const ta = Date.parse(a);
      const tb = Date.parse(b);
      return Number.isNaN(ta) || Number.isNaN(tb) ? a !== b : ta !== tb;
    }
    case "status":
    case "intent":
      return now[field] !== previous[field];
    case "businessStatus":
      return JSON.stringify(now.businessStatus?.coding ?? []) !== JSON.stringify(previous.businessStatus?.coding ?? []);
  }
}

function isTrue(result: unknown[]): boolean {
  return result.length === 1 && result[0] === true;
}

function startOf(resource: FhirResource): Date | undefined {
  if (resource.resourceType !== "Appointment" || resource.start === undefined) return undefined;
  const d = new Date(resource.start);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

function startsInFuture(resource: FhirResource, now: Date): boolean {
  const start = startOf(resource);
  return start !== undefined && start.getTime() > now.getTime();
}

type Timing = { ok: true; at: Date | undefined } | { ok: false; why: string };

/**
 * A reminder goes out `hours` before start (the rule's own value, else reminder.leadHours).
 * If that moment has passed, the confirmation already told the patient the time, so no reminder.
 */
function sendTime(message: RuleMessage, resource: FhirResource, now: Date, site: MappingConfig): Timing {
  if (message.send.kind === "now") return { ok: true, at: undefined };
  const start = startOf(resource);
  if (start === undefined) return { ok: false, why: "the appointment has no valid start" };
  if (start.getTime() <= now.getTime()) return { ok: false, why: "the appointment start is not in the future" };
  const at = new Date(start.getTime() - (message.send.hours ?? site.reminder.leadHours) * 3_600_000);
  if (at.getTime() <= now.getTime()) return { ok: false, why: "the reminder time has already passed" };
  return { ok: true, at };
}

function distinctValues(message: RuleMessage, resource: FhirResource, now: Date): string[] {
  return message.distinctBy.map((c) =>
    c
      .evaluate(resource, undefined, now)
      .map((v) => (typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)))
      .join(","),
  );
}

interface References {
  locationRef: string | undefined;
  location: Location | undefined;
  timeZone: string;
  practitioner: Practitioner | undefined;
  pharmacy: PharmacyEntry | undefined;
  prescription: MedicationRequest | undefined;
}

const usesAny = (message: RuleMessage, slots: readonly SlotName[]): boolean => message.slots.some((s) => slots.includes(s));

/** Read only what the rule's slots need: each read is a FHIR round trip and one more place data could come from. */
async function readReferences(message: RuleMessage, resource: FhirResource, fhir: FhirPort, site: MappingConfig): Promise<References> {
  const out: References = { locationRef: undefined, location: undefined, timeZone: site.defaultTimeZone, practitioner: undefined, pharmacy: undefined, prescription: undefined };
  if (resource.resourceType === "Appointment") {
    const actors = resource.participant.filter((p) => p.status !== "declined").map((p) => p.actor?.reference);
    out.locationRef = actors.find((r): r is string => r !== undefined && r.startsWith("Location/"));
    if (usesAny(message, ["appointmentDate", "appointmentTime"])) out.timeZone = await appointmentZone(out.locationRef, fhir, site, (l) => (out.location = l));
    if (usesAny(message, ["practitionerName"])) out.practitioner = await readPractitioner(resource, fhir);
  }
  if (usesAny(message, ["pharmacyName", "pharmacyAddressLine", "pharmacyHours"])) {
    const found = await findPharmacy(resource, fhir, site);
    out.pharmacy = found.pharmacy;
    out.prescription = found.prescription;
  }
  return out;
}

async function appointmentZone(locationRef: string | undefined, fhir: FhirPort, site: MappingConfig, keep: (l: Location) => void): Promise<string> {
  if (locationRef === undefined) return site.defaultTimeZone;
  const configured = site.locations[locationRef]?.timeZone;
  if (configured !== undefined) return configured;
  // R4 has no time zone element; the core timezone extension on Location is a hint only (fhir-notifications.md §8.4).
  const location = await fhir.read<Location>("Location", locationRef.slice("Location/".length));
  if (location !== undefined) keep(location);
  const hinted = location?.extension?.find((e) => e.url === timezoneExtension)?.valueCode;
  return hinted !== undefined && isTimeZone(hinted) ? hinted : site.defaultTimeZone;
}


async function readPractitioner(appointment: Appointment, fhir: FhirPort): Promise<Practitioner | undefined> {
  const ref = appointment.participant.find((p) => p.status !== "declined" && p.actor?.reference?.startsWith("Practitioner/"))?.actor?.reference;
  return ref === undefined ? undefined : fhir.read<Practitioner>("Practitioner", ref.slice("Practitioner/".length));
}

/**
 * The pharmacy, by configured id only: the dispense's location or performer, the Task's owner,
 * or the prescription's intended dispenser (dispenseRequest.performer).
 */
async function findPharmacy(resource: FhirResource, fhir: FhirPort, site: MappingConfig): Promise<{ pharmacy: PharmacyEntry | undefined; prescription: MedicationRequest | undefined }> {
  const configured = (ref: string | undefined): PharmacyEntry | undefined => (ref !== undefined ? site.pharmacies[ref] : undefined);
  let prescriptionRef: string | undefined;
  if (resource.resourceType === "MedicationDispense") {
    const direct = configured(resource.location?.reference) ?? resource.performer?.map((p) => configured(p.actor.reference)).find((p) => p !== undefined);
    if (direct !== undefined) return { pharmacy: direct, prescription: undefined };
    prescriptionRef = resource.authorizingPrescription?.[0]?.reference;
  } else if (resource.resourceType === "Task") {
    const owner = configured(resource.owner?.reference) ?? configured(resource.location?.reference);
    if (owner !== undefined) return { pharmacy: owner, prescription: undefined };
    prescriptionRef = resource.focus?.reference;
  } else if (resource.resourceType === "MedicationRequest") {
    return { pharmacy: configured(resource.dispenseRequest?.performer?.reference), prescription: undefined };
  }
  if (prescriptionRef === undefined || !prescriptionRef.startsWith("MedicationRequest/")) return { pharmacy: undefined, prescription: undefined };
  const prescription = await fhir.read<MedicationRequest>("MedicationRequest", prescriptionRef.slice("MedicationRequest/".length));
  return { pharmacy: configured(prescription?.dispenseRequest?.performer?.reference), prescription };
}

/**
 * The site's rules as serve runs them: the configured labels linted, mapping.dir loaded for the
 * site's languages and checked against the site config. `fhir-notify mappings check` and preview call the same function.
 */
export function loadSiteMapping(site: MappingConfig, clock: Clock = systemClock): Mapping {
  checkSiteLabels(site);
  const languages = [site.defaultLanguage, ...Object.values(site.languages)];
  return createMapping(loadMappingSet(site.dir, { languages }), site, clock);
}

/** Rules and templates are checked against the site config once, at boot. */
function checkAgainstSite(active: readonly Rule[], site: MappingConfig): void {
  const languages = new Set([site.defaultLanguage, ...Object.values(site.languages)]);
  for (const rule of active) {
    const message = rule.message;
    if (message === undefined) continue;
    const template = message.template;
    for (const code of languages) {
      if (!template.languages.has(code)) template.fail(["languages"], `missing '${code}' translation (configured in mapping.languages/defaultLanguage)`);
    }
    for (const [code, lang] of template.languages) {
      lang.buttons.forEach((b, i) => {
        // A path is under portal.url by construction; a full url must point at the same portal.
        if (b.type === "URL" && b.url !== undefined && !b.url.startsWith(site.portal.url)) {
          template.fail(["languages", code, "buttons", i, "url"], `must start with the configured mapping.portal.url (or use path: /…/{{1}} under it)`);
        }
      });
    }
    if (message.slots.includes("organizationPhone") && site.organization.phone === undefined) {
      throw new MappingError(`${rule.file}: slots: rule '${rule.id}' uses organizationPhone but mapping.organization.phone is not set`);
    }
  }
}
