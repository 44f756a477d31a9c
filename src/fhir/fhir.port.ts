import type { Bundle, FhirResource, OperationOutcome } from "fhir/r4";

/** The FHIR operations fhir-notify uses. The real client and the in-memory fake both implement it. */
export interface FhirPort {
  readonly baseUrl: string;
  /** Current version, or undefined when the server says 404/410 (gone). */
  read<T extends FhirResource = FhirResource>(resourceType: T["resourceType"], id: string): Promise<T | undefined>;
  /** A specific version; undefined when the server does not have it. */
  vread<T extends FhirResource = FhirResource>(resourceType: T["resourceType"], id: string, versionId: string): Promise<T | undefined>;
  /** One page of a type-level search. */
  search(resourceType: string, params: Readonly<Record<string, string>>): Promise<Bundle>;
  /** A page by absolute URL, e.g. a Bundle.link[next].url, used exactly as given. */
  fetchPage(url: string): Promise<Bundle>;
  /** Create; with ifNoneExist it is a conditional create (200 with the match, or 201). */
  create<T extends FhirResource>(resource: T, options?: { ifNoneExist?: string }): Promise<{ resource: T; created: boolean }>;
  /** Update; with ifMatch the server answers 412 (FhirError status 412) when the version moved on. */
  update<T extends FhirResource>(resource: T & { id: string }, options?: { ifMatch?: string }): Promise<T>;
}

/** Errors from the FHIR adapter say whether a retry can help (house style rule 5). */
export class FhirError extends Error {
  override name = "FhirError";
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly retryable: boolean,
    readonly outcome?: OperationOutcome,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** Version conflict on If-Match: re-read, merge, retry. Some servers answer 409 instead of 412. */
  get isConflict(): boolean {
    return this.status === 412 || this.status === 409;
  }
}
