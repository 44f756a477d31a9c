import type { ContactPoint, FhirResource, Patient } from "fhir/r4";
import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js";
import type { MappingConfig } from "./mapping.config.js";

/**
 * Who a message goes to, in which language: fhir-notifications.md §8.4. Every "no" here is a
 * NotDoneReason code, never the value that caused it.
 */

/** "Patient/id" from Appointment.participant (not declined), subject or Task.for; undefined when none is a Patient. */
export function patientRefOf(resource: FhirResource): string | undefined {
  if (resource.resourceType === "Appointment") {
    return resource.participant.find((p) => p.status !== "declined" && isPatientRef(p.actor?.reference))?.actor?.reference;
  }
  const subject =
    resource.resourceType === "MedicationDispense" || resource.resourceType === "MedicationRequest" || resource.resourceType === "DiagnosticReport"
      ? resource.subject?.reference
      : resource.resourceType === "Task"
        ? resource.for?.reference
        : undefined;
  return isPatientRef(subject) ? subject : undefined;
}

function isPatientRef(ref: string | undefined): ref is string {
  return ref !== undefined && /^Patient\/[A-Za-z0-9\-.]{1,64}$/.test(ref);
}

/** active=false or any deceased[x] value other than false: no messages. */
export function isPatientInactive(patient: Patient): boolean {
  return patient.active === false || patient.deceasedBoolean === true || patient.deceasedDateTime !== undefined;
}

type MobileResult = { ok: true; e164: string } | { ok: false; reason: "no-mobile-number" | "invalid-phone-number" };

/**
 * Candidates: system phone|sms, use mobile, period covering now. Lowest rank wins (missing rank
 * last), then document order. The chosen number must parse to a valid E.164 number; we do not
 * fall through to a worse-ranked one, because the patient ranked that number first.
 */
export function selectMobile(patient: Patient, defaultRegion: string, now: Date): MobileResult {
  const candidates = (patient.telecom ?? [])
    .map((contact, order) => ({ contact, order }))
    .filter(({ contact }) => (contact.system === "phone" || contact.system === "sms") && contact.use === "mobile" && isCurrent(contact, now))
    .filter(({ contact }) => contact.value !== undefined && contact.value.trim() !== "")
    .sort((a, b) => (a.contact.rank ?? Number.MAX_SAFE_INTEGER) - (b.contact.rank ?? Number.MAX_SAFE_INTEGER) || a.order - b.order);
  const best = candidates[0]?.contact.value;
  if (best === undefined) return { ok: false, reason: "no-mobile-number" };
  const e164 = toE164(best, defaultRegion);
  return e164 === undefined ? { ok: false, reason: "invalid-phone-number" } : { ok: true, e164 };
}

// Parsing and validating a number is the costliest step of a decision (~10 µs) and the same
// patients come back (confirmation, reminder, follow-up). A bounded in-process memo; it holds
// nothing that is not already in this process's memory, and it is never logged or persisted.
const e164Memo = new Map<string, string | null>();
const e164MemoLimit = 10_000;

function toE164(raw: string, defaultRegion: string): string | undefined {
  const key = `${defaultRegion}|${raw}`;
  const known = e164Memo.get(key);
  if (known !== undefined) return known ?? undefined;
  const parsed = parsePhoneNumberFromString(raw, defaultRegion as CountryCode);
  const result = parsed !== undefined && parsed.isValid() ? parsed.number : null;
  if (e164Memo.size >= e164MemoLimit) e164Memo.clear();
  e164Memo.set(key, result);
  return result ?? undefined;
}

function isCurrent(contact: ContactPoint, now: Date): boolean {
  const { start, end } = contact.period ?? {};
  if (end !== undefined && Date.parse(end) <= now.getTime()) return false;
  if (start !== undefined && Date.parse(start) > now.getTime()) return false;
  return true;
}

/**
 * The patient's languages in order of preference (preferred first, then document order), mapped
 * to a Meta code the template has: full tag first (es-MX), then the primary subtag (es). Falls
 * back to the site default when the template has it; undefined means no usable language.
 */
export function chooseLanguage(patient: Patient, site: MappingConfig, available: ReadonlySet<string>): string | undefined {
  const entries = (patient.communication ?? []).map((c, order) => ({ c, order }));
  entries.sort((a, b) => Number(b.c.preferred === true) - Number(a.c.preferred === true) || a.order - b.order);
  const byTag = languageIndex(site);
  for (const { c } of entries) {
    const tags = [...(c.language.coding ?? []).map((coding) => coding.code), c.language.text].filter((t): t is string => t !== undefined && t !== "");
    for (const tag of tags) {
      const normalised = tag.replace(/_/g, "-").toLowerCase();
      const code = byTag.get(normalised) ?? byTag.get(normalised.split("-")[0] ?? "");
      if (code !== undefined && available.has(code)) return code;
    }
  }
  return available.has(site.defaultLanguage) ? site.defaultLanguage : undefined;
}

/** Lower-cased tag → Meta code, built once per config object (config is frozen after boot). */
const indexes = new WeakMap<MappingConfig, ReadonlyMap<string, string>>();
function languageIndex(site: MappingConfig): ReadonlyMap<string, string> {
  let index = indexes.get(site);
  if (index === undefined) {
    index = new Map(Object.entries(site.languages).map(([tag, code]) => [tag.toLowerCase(), code]));
    indexes.set(site, index);
  }
  return index;
}

/** Meta's en_US → the BCP-47 locale Intl understands, en-US. */
export function localeOf(metaCode: string): string {
  return metaCode.replace("_", "-");
}
