import type { FhirResource } from "fhir/r4";

/**
 * The LOGIC-only snapshot of a resource version kept between notifications (in Redis, by the
 * lead's intake), so rules can say "became booked" or "start changed". It is shaped like the
 * resource (resourceType, meta.versionId, ...) so FHIRPath compares typed values: an instant
 * written with another offset is still the same start. Never any clinical or free-text field.
 */
export interface PreviousProjection {
  readonly resourceType: string;
  readonly id?: string;
  readonly meta?: { readonly versionId?: string };
  readonly status?: string;
  readonly start?: string;
  readonly end?: string;
  readonly intent?: string;
  readonly issued?: string;
  readonly businessStatus?: { readonly coding: readonly { readonly system?: string; readonly code?: string }[] };
}

export function previousProjection(resource: FhirResource): PreviousProjection {
  const r = resource as unknown as Record<string, unknown>;
  const str = (key: string): string | undefined => (typeof r[key] === "string" ? r[key] : undefined);
  const versionId = resource.meta?.versionId;
  const businessStatus = resource.resourceType === "Task" ? resource.businessStatus?.coding : undefined;
  return {
    resourceType: resource.resourceType,
    ...(resource.id !== undefined ? { id: resource.id } : {}),
    ...(versionId !== undefined ? { meta: { versionId } } : {}),
    ...pick("status", str("status")),
    ...pick("start", str("start")),
    ...pick("end", str("end")),
    ...pick("intent", str("intent")),
    ...pick("issued", str("issued")),
    ...(businessStatus !== undefined
      ? {
          businessStatus: {
            coding: businessStatus.map((c) => ({ ...(c.system !== undefined ? { system: c.system } : {}), ...(c.code !== undefined ? { code: c.code } : {}) })),
          },
        }
      : {}),
  };
}

function pick<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value !== undefined ? ({ [key]: value } as Record<K, string>) : {};
}
