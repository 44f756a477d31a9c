import type { Bundle, FhirResource } from "fhir/r4";
import { FakeFhir } from "../test/fakes/fhir.fake.js";

/**
 * The unit-test FakeFhir scans every resource on each search; the audit worker's conditional
 * create searches by identifier once per write, which would make the bench measure the fake
 * (O(n²)). Same behaviour, with an identifier index, and a count of the requests a real server
 * would have received (a conditional create is one request, not a search plus a create).
 */
export class IndexedFhir extends FakeFhir {
  private readonly byIdentifier = new Map<string, FhirResource & { id: string }>();
  /** FHIR requests served so far (read, vread, search, page, create, update). */
  requests = 0;
  private nested = 0;

  private count<T>(call: () => Promise<T>): Promise<T> {
    if (this.nested === 0) this.requests++;
    // The unit-test fake logs every call for assertions; a bench would only accumulate them.
    this.calls.length = 0;
    this.nested++;
    try {
      return call();
    } finally {
      this.nested--;
    }
  }

  override put<T extends FhirResource>(resource: T): T & { id: string } {
    const stored = super.put(resource);
    for (const i of (stored as { identifier?: { system?: string; value?: string }[] }).identifier ?? []) {
      this.byIdentifier.set(`${stored.resourceType}|${i.system ?? ""}|${i.value ?? ""}`, stored);
    }
    return stored;
  }

  override read<T extends FhirResource = FhirResource>(resourceType: T["resourceType"], id: string): Promise<T | undefined> {
    return this.count(() => super.read<T>(resourceType, id));
  }

  override vread<T extends FhirResource = FhirResource>(resourceType: T["resourceType"], id: string, versionId: string): Promise<T | undefined> {
    return this.count(() => super.vread<T>(resourceType, id, versionId));
  }

  override fetchPage(url: string): Promise<Bundle> {
    return this.count(() => super.fetchPage(url));
  }

  override create<T extends FhirResource>(resource: T, options?: { ifNoneExist?: string }): Promise<{ resource: T; created: boolean }> {
    return this.count(() => super.create(resource, options));
  }

  override update<T extends FhirResource>(resource: T & { id: string }, options?: { ifMatch?: string }): Promise<T> {
    return this.count(() => super.update(resource, options));
  }

  override search(resourceType: string, params: Readonly<Record<string, string>>): Promise<Bundle> {
    return this.count(() => {
      const keys = Object.keys(params);
      const identifier = params.identifier;
      if (keys.length !== 1 || identifier === undefined || !identifier.includes("|")) return super.search(resourceType, params);
      const hit = this.byIdentifier.get(`${resourceType}|${identifier}`);
      return Promise.resolve({
        resourceType: "Bundle",
        type: "searchset",
        total: hit === undefined ? 0 : 1,
        entry: hit === undefined ? [] : [{ fullUrl: `${this.baseUrl}/${resourceType}/${hit.id}`, resource: hit }],
      });
    });
  }
}
