import type { FhirResource } from "fhir/r4";
import { clinicalAcronymIn, clinicalWordIn } from "./clinical-terms.js";

/**
 * The second wall. Slots are the first: a rule cannot name a clinical field. This guard checks
 * the rendered values anyway, against the clinical content of the very resources the message is
 * about, so a mis-configured label or a bug in a slot cannot carry a drug name or a result out.
 */

/** Top-level elements classed DENY (fhir-notifications.md §8) whose text must never reach a message. */
const clinicalElements = new Set([
  "medication",
  "medicationCodeableConcept",
  "medicationReference",
  "code",
  "conclusion",
  "conclusionCode",
  "reasonCode",
  "reasonReference",
  "serviceType",
  "serviceCategory",
  "specialty",
  "appointmentType",
  "note",
  "description",
  "comment",
  "patientInstruction",
  "dosageInstruction",
  "supportingInformation",
  "basedOn",
  "cancelationReason",
  "result",
  "presentedForm",
  "specimen",
  "input",
  "output",
  "qualification",
]);

/** Matched only as whole values: their words (a street, a city) are too common to match one by one. */
const wholeValueElements = new Set(["identifier", "birthDate"]);

/** Words of six letters or more that appear in clinical text and in ordinary labels alike. */
const commonWords = new Set([
  "clinic", "clinica", "center", "centre", "centro", "hospital", "health", "medical", "outpatient", "patient", "paciente",
  "appointment", "follow", "review", "routine", "general", "please", "before", "should", "street", "avenue", "building",
  "floor", "tablet", "tablets", "capsule", "capsules", "report", "reports", "results", "morning", "evening", "daily",
  "office", "service", "services", "pharmacy", "farmacia", "portal", "visita", "consulta", "control",
]);

const minLength = 4;
const minTokenLength = 6;

/**
 * Which of the guard's rules matched, by name: a clinical acronym from the list, the clinical
 * text of a resource (a whole value or one of its distinctive words), or an identifying value
 * (identifier, birth date, address) compared whole.
 */
export type GuardRule = "clinical-acronym" | "clinical-text" | "identifying-value";
export const guardRules: readonly GuardRule[] = ["clinical-acronym", "clinical-text", "identifying-value"];

/** What blocked a value: the guard rule and, when a resource was matched, its element ("Appointment.serviceType"). Names only. */
export interface LeakFound {
  readonly rule: GuardRule;
  readonly element?: string;
}

/** Where a sensitive string came from: the element name and the rule that compares it. */
interface Source {
  readonly element: string;
  readonly rule: GuardRule;
}

interface SensitiveValues {
  readonly whole: readonly (readonly [text: string, source: Source])[];
  readonly tokens: ReadonlyMap<string, Source>;
}

/** Invisible format characters (zero-width spaces and joiners, bidi controls, soft hyphen, BOM, variation selectors). */
const invisible = /[\p{Cf}\uFE00-\uFE0F]/gu;

/**
 * Cyrillic, Greek and other letters that look like Latin ones (a small part of Unicode's
 * confusables table: the look-alikes of letters), so "НІV" typed in Cyrillic reads "HIV".
 */
const confusables: Readonly<Record<string, string>> = {
  // Cyrillic
  А: "A", а: "a", В: "B", Е: "E", е: "e", К: "K", к: "k", М: "M", Н: "H", һ: "h", Һ: "H", О: "O", о: "o", Р: "P", р: "p",
  С: "C", с: "c", Т: "T", Х: "X", х: "x", У: "Y", у: "y", Ү: "Y", ү: "y", І: "I", і: "i", Ӏ: "I", ӏ: "l", Ј: "J", ј: "j",
  Ѕ: "S", ѕ: "s", Ԁ: "D", ԁ: "d", Ԛ: "Q", ԛ: "q", Ԝ: "W", ԝ: "w",
  // Greek
  Α: "A", α: "a", Β: "B", Ε: "E", Ζ: "Z", Η: "H", Ι: "I", ι: "i", Κ: "K", κ: "k", Μ: "M", Ν: "N", ν: "v", Ο: "O", ο: "o",
  Ρ: "P", ρ: "p", Τ: "T", Υ: "Y", υ: "u", Χ: "X", χ: "x", ϲ: "c", Ϲ: "C", ϳ: "j",
  // Latin and Armenian look-alikes
  ı: "i", ɑ: "a", ɡ: "g", օ: "o", ս: "u",
};
const confusableLetters = new RegExp(`[${Object.keys(confusables).join("")}]`, "gu");

/**
 * Text as the guard reads it, case kept: invisible characters dropped (not turned into gaps, so
 * "H\u200BIV" is one word), compatibility forms folded by NFKD (fullwidth "ＨＩＶ", ligatures,
 * mathematical letters), accents removed, look-alike letters mapped to Latin.
 */
export function fold(text: string): string {
  return text
    .replace(invisible, "")
    .normalize("NFKD")
    .replace(/\p{M}/gu, "")
    .replace(confusableLetters, (c) => confusables[c] ?? c);
}

/** Lower-case, fold, strip punctuation, collapse spaces: "Sertralina 50 mg." → "sertralina 50 mg". */
export function normalise(text: string): string {
  const ascii = normaliseAscii(text);
  if (ascii !== undefined) return ascii;
  return fold(text)
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
}

/** The folded words of a text, case kept, for the acronym list. */
function foldedWords(text: string): string[] {
  return (normaliseAscii(text) !== undefined ? text : fold(text)).split(/[^\p{L}\p{N}]+/u).filter((w) => w !== "");
}

/**
 * The same for plain ASCII (most values), in one pass without regular expressions: this runs for
 * every sensitive string of every message. undefined when the text is not ASCII.
 */
function normaliseAscii(text: string): string | undefined {
  let out = "";
  let gap = false;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c > 0x7e) return undefined;
    if (c >= 65 && c <= 90) c += 32;
    if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57)) {
      if (gap && out.length > 0) out += " ";
      out += String.fromCharCode(c);
      gap = false;
    } else gap = true;
  }
  return out;
}

class Collector implements SensitiveValues {
  readonly whole: (readonly [string, Source])[] = [];
  readonly tokens = new Map<string, Source>();

  addWhole(s: string, source: Source): void {
    const n = normalise(s);
    if (n.length >= minLength) this.whole.push([n, source]);
  }

  addText(s: string, source: Source): void {
    const n = normalise(s);
    if (n.length < minLength) return;
    this.whole.push([n, source]);
    if (n.length < minTokenLength) return;
    let from = 0;
    while (from < n.length) {
      let to = n.indexOf(" ", from);
      if (to < 0) to = n.length;
      if (to - from >= minTokenLength) {
        const word = n.slice(from, to);
        if (!/^\d+$/.test(word) && !commonWords.has(word) && !this.tokens.has(word)) this.tokens.set(word, source);
      }
      from = to + 1;
    }
  }

  /** Every string under value, except Attachment data (base64), URLs and code systems, which no message could repeat. */
  walk(value: unknown, source: Source): void {
    if (typeof value === "string") {
      if (source.rule === "identifying-value") this.addWhole(value, source);
      else this.addText(value, source);
    } else if (Array.isArray(value)) {
      for (const v of value) this.walk(v, source);
    } else if (value !== null && typeof value === "object") {
      const record = value as Record<string, unknown>;
      for (const k in record) if (k !== "data" && k !== "url" && k !== "system") this.walk(record[k], source);
    }
  }
}

/**
 * Collect the clinical strings of the triggering resource and every resource read to build the
 * message. The Patient's address lines and postal code count as whole values; city and country
 * do not, because the clinic is usually in the patient's city.
 */
export function sensitiveValues(resources: readonly (FhirResource | undefined)[]): SensitiveValues {
  const out = new Collector();
  for (const resource of resources) {
    if (resource === undefined) continue;
    const record = resource as unknown as Record<string, unknown>;
    for (const key in record) {
      if (clinicalElements.has(key)) out.walk(record[key], { element: `${resource.resourceType}.${key}`, rule: "clinical-text" });
      else if (wholeValueElements.has(key)) out.walk(record[key], { element: `${resource.resourceType}.${key}`, rule: "identifying-value" });
    }
    if (resource.resourceType === "Patient") {
      const source: Source = { element: "Patient.address", rule: "identifying-value" };
      for (const address of resource.address ?? []) {
        for (const line of address.line ?? []) out.addWhole(line, source);
        if (address.postalCode !== undefined) out.addWhole(address.postalCode, source);
        if (address.text !== undefined) out.addWhole(address.text, source);
      }
    }
  }
  return out;
}

/**
 * What makes a rendered value unsendable, or undefined: a clinical acronym from the list (as a
 * word, in any alphabet's look-alike letters), a whole sensitive value (as words; anywhere if 8+
 * chars) or one of its distinctive words (as a word; anywhere if 8+ chars). The answer names the
 * guard rule and the element matched, never the value, so a block can be explained safely.
 */
export function findLeak(value: string, sensitive: SensitiveValues): LeakFound | undefined {
  const n = normalise(value);
  if (n === "") return undefined;
  if (clinicalAcronymIn(foldedWords(value)) !== undefined) return { rule: "clinical-acronym" };
  const padded = ` ${n} `;
  for (const [s, source] of sensitive.whole) {
    if (s.length <= n.length && (padded.includes(` ${s} `) || (s.length >= 8 && n.includes(s)))) return found(source);
  }
  for (const word of n.split(" ")) {
    const source = sensitive.tokens.get(word);
    if (source !== undefined) return found(source);
  }
  // Long words are distinctive enough to catch even when glued to other text ("xSertralineY").
  for (const [token, source] of sensitive.tokens) if (token.length >= 8 && token.length <= n.length && n.includes(token)) return found(source);
  return undefined;
}

function found(source: Source): LeakFound {
  return { rule: source.rule, element: source.element };
}

/** findLeak as a yes/no. */
export function leaks(value: string, sensitive: SensitiveValues): boolean {
  return findLeak(value, sensitive) !== undefined;
}

/**
 * The leak guard for fixed text (template wording, button texts and payloads, rule ids, configured
 * labels): no resource to compare with, so it checks the clinical vocabulary, acronyms and words,
 * through the same folding as the per-message guard. Returns the list entry that matched, which
 * names our vocabulary and never any patient's data, or undefined.
 */
export function clinicalTermIn(text: string): string | undefined {
  return clinicalAcronymIn(foldedWords(text)) ?? clinicalWordIn(normalise(text).split(" "));
}

/**
 * WhatsApp parameter rules (whatsapp-cloud-api.md §3.3): no newline/tab/U+2028/9, no runs of
 * spaces, no zero-width or bidi controls (they can disguise text), never empty, capped length.
 * undefined means the value is unusable and the message must not go out.
 */
export function sanitiseParameter(raw: string, maxLength: number): string | undefined {
  const cleaned = raw
    .replace(/[\u00AD\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF]/g, "")
    .replace(/[\p{Cc}\u2028\u2029]/gu, " ")
    .replace(/\s+/g, " ")
    .trim();
  if (cleaned === "") return undefined;
  const chars = [...cleaned];
  return chars.length <= maxLength ? cleaned : `${chars.slice(0, maxLength - 1).join("").trimEnd()}…`;
}
