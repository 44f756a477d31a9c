import type { Consent, ConsentProvision, Patient, Period } from "fhir/r4";
import type { FhirPort } from "../fhir/fhir.port.js";
import type { MappingConfig } from "./mapping.config.js";

/**
 * Has the patient opted in to WhatsApp logistics messages (fhir-notifications.md §8.5)? The
 * category meaning "WhatsApp logistics" is site-specific, so it comes from config. Deny wins:
 * any matching active Consent whose provision (or a nested one) denies now means no.
 */
export async function hasConsent(patient: Patient & { id: string }, fhir: FhirPort, site: MappingConfig, now: Date): Promise<boolean> {
  const { mode, categorySystem, categoryCode, tagSystem, tagCode } = site.consent;
  switch (mode) {
    case "none":
      return true;
    case "patient-tag":
      return (patient.meta?.tag ?? []).some((t) => t.system === tagSystem && t.code === tagCode);
    case "consent-resource": {
      const bundle = await fhir.search("Consent", {
        patient: `Patient/${patient.id}`,
        status: "active",
        category: `${categorySystem}|${categoryCode}`,
      });
      const consents = (bundle.entry ?? [])
        .map((e) => e.resource)
        .filter((r): r is Consent => r?.resourceType === "Consent")
        // The server may ignore a search parameter it does not support; check everything again.
        .filter((c) => c.status === "active" && c.patient?.reference === `Patient/${patient.id}`)
        .filter((c) => c.category.some((cc) => (cc.coding ?? []).some((k) => k.system === categorySystem && k.code === categoryCode)));
      if (consents.some((c) => deniesNow(c.provision, now))) return false;
      return consents.some((c) => c.provision?.type === "permit" && covers(c.provision.period, now));
    }
  }
}

function deniesNow(provision: ConsentProvision | undefined, now: Date): boolean {
  if (provision === undefined) return false;
  if (provision.type === "deny" && covers(provision.period, now)) return true;
  return (provision.provision ?? []).some((p) => deniesNow(p, now));
}

function covers(period: Period | undefined, now: Date): boolean {
  const t = now.getTime();
  if (period?.start !== undefined && Date.parse(period.start) > t) return false;
  if (period?.end !== undefined && Date.parse(period.end) <= t) return false;
  return true;
}
