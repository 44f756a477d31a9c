import { z } from "zod";
import { isTimeZone } from "../shared/time-zone.js";

/** Meta template language codes look like "en", "en_US", "pt_BR" (whatsapp-cloud-api.md §3.4). */
const metaLanguageCode = z.string().regex(/^[a-z]{2,3}(_[A-Z]{2})?$/, "must be a Meta language code such as en_US or es");
const bcp47 = z.string().regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, "must be a BCP-47 tag such as en or es-MX");
const ianaZone = z.string().refine(isTimeZone, "must be an IANA time zone such as America/New_York");
const reference = (types: string) => z.string().regex(new RegExp(`^(${types})/[A-Za-z0-9\\-.]{1,64}$`), `must be a reference like ${types.split("|")[0]}/id`);

const locationEntry = z
  .object({
    /** The public label patients see, e.g. "Riverside Clinic, 12 Main St". Never the FHIR Location.name. */
    label: z.string().min(1).max(60),
    timeZone: ianaZone.optional(),
  })
  .strict();

const pharmacyEntry = z
  .object({
    name: z.string().min(1).max(60),
    addressLine: z.string().min(1).max(60).optional(),
    hours: z.string().min(1).max(60).optional(),
  })
  .strict();

/**
 * The site slice of configuration the mapping needs. Everything a message may say about a place
 * or the organization comes from here, so a hospital controls the exact public wording.
 */
export const mappingConfigSchema = z
  .object({
    /** Folder holding the rule files and templates/ (relative to the working directory). */
    dir: z.string().min(1).default("mappings"),
    /** Template language used when none of the patient's languages has a template. */
    defaultLanguage: metaLanguageCode.default("en_US"),
    /** Patient.communication language (BCP-47) → Meta template language code. Lookup tries the full tag, then the primary subtag. */
    languages: z.record(bcp47, metaLanguageCode).default({ en: "en_US", es: "es" }),
    /** Country assumed for national-format phone numbers (libphonenumber region code). */
    defaultRegion: z.string().regex(/^[A-Z]{2}$/, "must be a two-letter region code such as US").default("US"),
    /** Used when neither the configured Location nor the Location resource gives a time zone. */
    defaultTimeZone: ianaZone.default("America/New_York"),
    portal: z
      .object({
        /** Base of the portal sign-in link. URL buttons in templates must start with it. */
        url: z.url({ protocol: /^https$/ }).default("https://portal.example.org"),
        /** HMAC secret for opaque link and reply tokens. Without it, tokens are plain hashes of the delivery id. */
        tokenSecret: z.string().min(16).optional(),
      })
      .strict()
      .prefault({}),
    organization: z
      .object({
        /** The Organization that sends in the hospital's name (DeliveryRecord.senderRef). */
        reference: reference("Organization").optional(),
        displayName: z.string().min(1).max(60).default("the clinic"),
        phone: z.string().min(3).max(30).optional(),
      })
      .strict()
      .prefault({}),
    /** "Location/id" → public label (and time zone). A Location not listed here cannot be named in a message. */
    locations: z.record(reference("Location"), locationEntry).default({}),
    /** "Organization/id" or "Location/id" of a dispensing pharmacy → what a message may say about it. */
    pharmacies: z.record(reference("Organization|Location"), pharmacyEntry).default({}),
    consent: z
      .object({
        /**
         * consent-resource: an active Consent (category below) with a permit provision covering now is required.
         * patient-tag: Patient.meta.tag must carry tagSystem|tagCode.
         * none: the site records opt-in elsewhere and vouches for every patient it sends.
         */
        mode: z.enum(["consent-resource", "patient-tag", "none"]).default("consent-resource"),
        categorySystem: z.string().min(1).default("https://fhir-notify.dev/fhir/CodeSystem/consent-category"),
        categoryCode: z.string().min(1).default("whatsapp-logistics"),
        tagSystem: z.string().min(1).default("https://fhir-notify.dev/fhir/CodeSystem/consent-category"),
        tagCode: z.string().min(1).default("whatsapp-logistics"),
        /**
         * What a STOP does besides the opt-out fhir-notify always keeps: record-deny also creates an
         * active Consent (the category above) whose provision denies from that moment, so the FHIR
         * server and other systems see the withdrawal. Only with mode consent-resource.
         */
        onOptOut: z.enum(["none", "record-deny"]).default("none"),
      })
      .strict()
      .superRefine((c, ctx) => {
        if (c.onOptOut === "record-deny" && c.mode !== "consent-resource") {
          ctx.addIssue({ code: "custom", path: ["onOptOut"], message: "record-deny needs mode consent-resource" });
        }
      })
      .prefault({}),
    reminder: z
      .object({
        /** Hours before Appointment.start the reminder goes out (brief: 24–48). A rule may set its own. */
        leadHours: z.number().int().min(24).max(48).default(24),
      })
      .strict()
      .prefault({}),
    /**
     * What "prescription ready for pickup" looks like at this site (fhir-notifications.md §8.2):
     * - MedicationDispense: MedicationDispense.status becomes in-progress ("ready for pickup" in the R4 code system). Default.
     * - MedicationRequest-extension: a local extension on the MedicationRequest flags readiness (rule prescription-ready-extension).
     * - Task: a pharmacy Task whose focus is the MedicationRequest reaches a ready businessStatus (rule prescription-ready-task).
     * Only the rules whose `signal` matches this value are active; the others are ignored.
     */
    prescriptionReadySignal: z.enum(["MedicationDispense", "MedicationRequest-extension", "Task"]).default("MedicationDispense"),
  })
  .strict();

export type MappingConfig = z.output<typeof mappingConfigSchema>;

