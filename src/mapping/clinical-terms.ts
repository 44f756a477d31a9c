/**
 * Clinical vocabulary the leak guard knows without looking at any resource. The per-message
 * guard compares values with the clinical text of the resources involved; these lists catch
 * what that comparison cannot: acronyms too short to compare ("HIV" in a label, a name field
 * misused as a note) and, in fixed text, words that disclose whatever the record says.
 */

/**
 * Short clinical acronyms, matched as whole words in any case. Each one names a condition,
 * a test or a treatment a patient may not want seen on a lock screen (English and Spanish).
 */
const acronymsAnyCase = [
  "hiv", "vih", "sti", "std", "hpv", "vph", "hsv", "hcv", "vhc", "hbv", "vhb", "tb", "ivf", "fiv", "iui", "icsi", "iud",
  "pcos", "mrsa", "ptsd", "tept", "ocd", "adhd", "tdah", "bpd", "copd", "ckd", "hrt",
];

/**
 * Acronyms that are also ordinary words or first names in some language or spelling ("Pep",
 * "meal prep", "hearing aids", "its", Dutch "oud", Catalan "ets"): matched only as clinicians
 * write them, in capitals.
 */
const acronymsAsWritten = ["PEP", "PrEP", "PREP", "AIDS", "SIDA", "ITS", "ETS", "OUD", "SUD", "ECT", "UTI"];

const anyCase = new Set(acronymsAnyCase);
const asWritten = new Set(acronymsAsWritten);

/**
 * The first clinical acronym among `words` (folded text split into words, case kept), or
 * undefined. Returned as listed, so a report can name the list entry, never the text around it.
 */
export function clinicalAcronymIn(words: readonly string[]): string | undefined {
  for (const word of words) {
    if (asWritten.has(word)) return word;
    const lower = word.toLowerCase();
    if (anyCase.has(lower)) return lower.toUpperCase();
  }
  return undefined;
}
