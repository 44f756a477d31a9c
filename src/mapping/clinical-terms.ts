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

/**
 * Words that disclose a condition, a sensitive service or a treatment (English and Spanish,
 * written as the guard normalises them: lower case, no accents). Fixed text (template wording,
 * button texts, configured labels) must not hold any of them: unlike a slot value, fixed text goes
 * to every patient the rule picks, so a word here tells each of them what the record says. Not
 * a list of every medicine or service: the per-message guard still compares the rest.
 */
const clinicalWords = [
  // cancer care
  "oncology", "oncologist", "oncological", "oncologia", "oncologico", "oncologo", "cancer", "cancers", "tumor", "tumors", "tumour", "tumours",
  "chemotherapy", "chemo", "quimioterapia", "radiotherapy", "radioterapia", "biopsy", "biopsia", "malignant", "maligno", "maligna",
  "carcinoma", "leukemia", "leukaemia", "leucemia", "lymphoma", "linfoma", "melanoma", "metastasis", "metastatic", "metastasico",
  "mammography", "mammogram", "mamografia", "palliative", "paliativo", "paliativos", "paliativa", "hospice",
  // sexual and reproductive health
  "hepatitis", "syphilis", "sifilis", "gonorrhea", "gonorrhoea", "gonorrea", "chlamydia", "clamidia", "herpes", "venereal", "venereo",
  "antiretroviral", "antirretroviral", "abortion", "aborto", "miscarriage", "pregnancy", "pregnant", "embarazo", "embarazada", "prenatal",
  "antenatal", "obstetric", "obstetrics", "obstetricia", "fertility", "infertility", "fertilidad", "infertilidad", "contraception",
  "contraceptive", "anticonceptivo", "anticoncepcion", "gynecology", "gynaecology", "ginecologia", "urology", "urologia", "vasectomy",
  "vasectomia", "sexual",
  // mental health and addiction
  "psychiatry", "psychiatric", "psychiatrist", "psiquiatria", "psiquiatrico", "psiquiatra", "psychotherapy", "psicoterapia",
  "depression", "depresion", "anxiety", "ansiedad", "schizophrenia", "esquizofrenia", "bipolar", "suicide", "suicidal", "suicidio",
  "addiction", "adiccion", "detox", "desintoxicacion", "methadone", "metadona", "buprenorphine", "suboxone", "naloxone", "opioid",
  "opioids", "opioide", "opioides", "alcoholism", "alcoholismo", "overdose", "sobredosis", "anorexia", "bulimia",
  // other conditions and treatments that name the patient's illness
  "dialysis", "dialisis", "transplant", "trasplante", "diabetes", "diabetic", "diabetico", "insulin", "insulina", "dementia", "demencia",
  "alzheimer", "alzheimers", "epilepsy", "epilepsia", "autism", "autismo", "bariatric", "bariatrica", "genetic", "genetico", "genetica",
];

const words = new Set(clinicalWords);
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

/** The first clinical word among `normalisedWords` (lower case, no accents), or undefined. */
export function clinicalWordIn(normalisedWords: readonly string[]): string | undefined {
  return normalisedWords.find((w) => words.has(w));
}
