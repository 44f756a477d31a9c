import type { Bundle, FhirResource } from "fhir/r4";
import { FhirError, type FhirPort } from "../../src/fhir/fhir.port.js";

type Stored = FhirResource & { id: string };

/**
 * In-memory FhirPort for unit tests. Keeps every version, answers a small subset of search
 * (exact-match on _id, patient/subject, status, identifier system|value) and can script failures.
 */
export class FakeFhir implements FhirPort {
  readonly baseUrl = "https://fhir.example.org/fhir";
  private readonly versions = new Map<string, Stored[]>();
  /** Push errors here to make the next calls fail (first in, first thrown). */
  readonly failNext: FhirError[] = [];
  readonly calls: string[] = [];
  private nextId = 1;

  constructor(seed: readonly FhirResource[] = []) {
    for (const r of seed) this.put(r);
  }

  /** Store a resource as a new version (test setup helper; no failures applied). */
  put<T extends FhirResource>(resource: T): T & { id: string } {
    const id = resource.id ?? `fake-${this.nextId++}`;
    const key = `${resource.resourceType}/${id}`;
    const history = this.versions.get(key) ?? [];
    const versionId = String(history.length + 1);
    const stored = {
      ...resource,
      id,
      meta: { ...resource.meta, versionId, lastUpdated: new Date().toISOString() },
    } as T & { id: string };
    history.push(stored);
    this.versions.set(key, history);
    return stored;
  }

  remove(resourceType: string, id: string): void {
    this.versions.delete(`${resourceType}/${id}`);
  }

  all(resourceType: string): Stored[] {
    const out: Stored[] = [];
    for (const [key, history] of this.versions) {
      const last = history[history.length - 1];
      if (key.startsWith(`${resourceType}/`) && last) out.push(last);
    }
    return out;
  }

  private maybeFail(call: string): void {
    this.calls.push(call);
    const err = this.failNext.shift();
    if (err) throw err;
  }

  read<T extends FhirResource = FhirResource>(resourceType: T["resourceType"], id: string): Promise<T | undefined> {
    this.maybeFail(`read ${resourceType}/${id}`);
    const history = this.versions.get(`${resourceType}/${id}`);
    return Promise.resolve(history?.[history.length - 1] as T | undefined);
  }

  vread<T extends FhirResource = FhirResource>(resourceType: T["resourceType"], id: string, versionId: string): Promise<T | undefined> {
    this.maybeFail(`vread ${resourceType}/${id}/${versionId}`);
    const history = this.versions.get(`${resourceType}/${id}`);
    return Promise.resolve(history?.find((r) => r.meta?.versionId === versionId) as T | undefined);
  }

  search(resourceType: string, params: Readonly<Record<string, string>>): Promise<Bundle> {
    this.maybeFail(`search ${resourceType}?${new URLSearchParams(params as Record<string, string>).toString()}`);
    const matches = this.all(resourceType).filter((r) => Object.entries(params).every(([k, v]) => matchesParam(r, k, v)));
    return Promise.resolve({
      resourceType: "Bundle",
      type: "searchset",
      total: matches.length,
      entry: matches.map((resource) => ({ fullUrl: `${this.baseUrl}/${resource.resourceType}/${resource.id}`, resource })),
    });
  }

  fetchPage(url: string): Promise<Bundle> {
    this.maybeFail(`page ${url}`);
    return Promise.resolve({ resourceType: "Bundle", type: "searchset", entry: [] });
  }

  async create<T extends FhirResource>(resource: T, options?: { ifNoneExist?: string }): Promise<{ resource: T; created: boolean }> {
    this.maybeFail(`create ${resource.resourceType}`);
    if (options?.ifNoneExist !== undefined) {
      const existing = await this.search(resource.resourceType, Object.fromEntries(new URLSearchParams(options.ifNoneExist)));
      const entries = existing.entry ?? [];
      if (entries.length > 1) throw new FhirError("conditional create matched several resources", 412, false);
      const first = entries[0]?.resource;
      if (first) return { resource: first as T, created: false };
    }
    const { id: _ignored, ...rest } = resource;
    return { resource: this.put(rest as T), created: true };
  }

  update<T extends FhirResource>(resource: T & { id: string }, options?: { ifMatch?: string }): Promise<T> {
    this.maybeFail(`update ${resource.resourceType}/${resource.id}`);
    const history = this.versions.get(`${resource.resourceType}/${resource.id}`);
    const current = history?.[history.length - 1];
    // RFC 9110 §13.1.1: If-Match is false when there is no current representation (deleted) too.
    if (options?.ifMatch !== undefined && (current === undefined || `W/"${current.meta?.versionId}"` !== options.ifMatch)) {
      return Promise.reject(new FhirError("version conflict", 412, false));
    }
    return Promise.resolve(this.put(resource));
  }
}

function matchesParam(resource: FhirResource, key: string, value: string): boolean {
  const r = resource as unknown as Record<string, unknown>;
  switch (key) {
    case "_id":
      return value.split(",").includes(resource.id ?? "");
    case "status":
      return value.split(",").includes(String(r.status));
    case "patient":
    case "subject": {
      const refs = [r.patient, r.subject].map((x) => (x as { reference?: string } | undefined)?.reference);
      return refs.includes(value) || refs.includes(`Patient/${value}`);
    }
    case "identifier": {
      const [system, code] = value.includes("|") ? value.split("|") : [undefined, value];
      const ids = (r.identifier as { system?: string; value?: string }[] | undefined) ?? [];
      return ids.some((i) => i.value === code && (system === undefined || system === "" || i.system === system));
    }
    case "_count":
    case "_sort":
      return true;
    default:
      return true;
  }
}
