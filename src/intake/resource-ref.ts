/** FHIR `id` datatype (R4 datatypes.html#id); also the shape of meta.versionId. */
const fhirId = /^[A-Za-z0-9\-.]{1,64}$/;

export function isFhirId(value: string): boolean {
  return fhirId.test(value);
}

export interface ResourceRef {
  resourceType: string;
  id: string;
  versionId?: string;
}

/**
 * Relative (`Appointment/apt-7781`), absolute (`https://ehr.example.org/fhir/Appointment/apt-7781`)
 * and versioned (`.../_history/3`) references all become Type/id. The base is dropped on purpose: a
 * notification is only a hint, and the worker reads the resource from the configured server.
 */
export function parseReference(reference: string): ResourceRef | undefined {
  const path = reference.split(/[?#]/, 1)[0] ?? "";
  const match = /(?:^|\/)([A-Z][A-Za-z]{1,63})\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([A-Za-z0-9\-.]{1,64}))?\/?$/.exec(path);
  if (!match?.[1] || !match[2]) return undefined;
  return { resourceType: match[1], id: match[2], ...(match[3] !== undefined ? { versionId: match[3] } : {}) };
}
