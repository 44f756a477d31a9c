import { clinicalTermIn } from "./leak-guard.js";
import type { MappingConfig } from "./mapping.config.js";
import { MappingError } from "./yaml-source.js";

/**
 * Configured labels are fixed text too: a Location's public label, the organization's display
 * name and phone, each pharmacy's name, address line and hours go into every message that names
 * that place. A clinical term there ("HIV Clinic", "Oncology Wing") would tell each patient's
 * lock screen what the visit is for, so serve refuses to start and `mappings check` fails, naming
 * the configuration key, never the label's text.
 */
export function checkSiteLabels(site: MappingConfig): void {
  const labels: [key: string, text: string | undefined][] = [
    ["mapping.organization.displayName", site.organization.displayName],
    ...Object.entries(site.locations).map(([ref, l]): [string, string] => [`mapping.locations.${ref}.label`, l.label]),
    ...Object.entries(site.pharmacies).flatMap(([ref, p]): [string, string | undefined][] => [
      [`mapping.pharmacies.${ref}.name`, p.name],
      [`mapping.pharmacies.${ref}.addressLine`, p.addressLine],
      [`mapping.pharmacies.${ref}.hours`, p.hours],
    ]),
  ];
  for (const [key, text] of labels) {
    const term = text !== undefined ? clinicalTermIn(text) : undefined;
    if (term !== undefined) {
      throw new MappingError(`${key}: the configured label names '${term}', a clinical term (src/mapping/clinical-terms.ts): every message that names this place would show it`);
    }
  }
}
