import {
  badRequest,
  deepClone,
  gone,
  notFound,
  OperationOutcomeError,
  preconditionFailed,
  validateResource,
} from "@medplum/core";
import type { matchesSearchRequest } from "@medplum/core";
import { MemoryRepository } from "@medplum/fhir-router";
import type { Clock } from "../shared/clock.js";

/** medplum's own Resource type, taken from its API so we do not import @medplum/fhirtypes directly. */
export type StoredResource = Parameters<typeof matchesSearchRequest>[0] & { id: string };
type AnyResource = Parameters<typeof matchesSearchRequest>[0];

export type Interaction = "create" | "update" | "delete";

/** One row of the version log: what the R4 history interaction reports. */
export interface VersionEntry {
  readonly method: "POST" | "PUT" | "DELETE";
  readonly resourceType: string;
  readonly id: string;
  readonly versionId: string;
  readonly lastUpdated: string;
  /** Absent for a delete: R4 history shows a deleted version as an entry without a resource. */
  readonly resource?: StoredResource;
}

export interface ResourceChange {
  readonly interaction: Interaction;
  /** The version just written; for a delete, the last version before it. */
  readonly resource: StoredResource;
}

interface SandboxRepositoryOptions {
  readonly clock: Clock;
  /** Lets the server own fields on write (Subscription status); may throw an OperationOutcomeError. */
  readonly prepare: (resource: StoredResource) => StoredResource;
  /** Called synchronously after every write, so the caller sees exactly the version written. */
  readonly onChange: (change: ResourceChange) => void;
}

/** FHIR ids: https://hl7.org/fhir/R4/datatypes.html#id */
const fhirId = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * medplum's MemoryRepository with the parts a real R4 server has and the test double lacks:
 * server-assigned sequential version ids (so ETags read `W/"2"`), a lastUpdated from the
 * injected clock, profile validation on every write, deletes that are versions of their own
 * (410 on read, a DELETE entry in history), and a change hook for subscriptions.
 */
export class SandboxRepository extends MemoryRepository {
  readonly #log: VersionEntry[] = [];
  readonly #latest = new Map<string, VersionEntry>();
  readonly #options: SandboxRepositoryOptions;

  constructor(options: SandboxRepositoryOptions) {
    super();
    this.#options = options;
  }

  // R4 create: "the server assigns the id; any id in the body is ignored" (http.html#create).
  override async createResource<T extends AnyResource>(resource: T): Promise<T & { id: string }> {
    return this.#write({ ...resource, id: this.generateId() }, "POST") as Promise<T & { id: string }>;
  }

  override async updateResource<T extends AnyResource>(resource: T, options?: { ifMatch?: string }): Promise<T & { id: string }> {
    const { id } = resource;
    if (id === undefined || !fhirId.test(id)) throw new OperationOutcomeError(badRequest("missing or invalid id", `${resource.resourceType}.id`));
    const latest = this.#latest.get(`${resource.resourceType}/${id}`);
    if (options?.ifMatch !== undefined) {
      if (latest === undefined || latest.method === "DELETE") throw new OperationOutcomeError(notFound);
      if (latest.versionId !== options.ifMatch) throw new OperationOutcomeError(preconditionFailed);
    }
    return this.#write(resource as unknown as StoredResource, "PUT") as Promise<T & { id: string }>;
  }

  override async deleteResource(resourceType: string, id: string): Promise<void> {
    const latest = this.#latest.get(`${resourceType}/${id}`);
    if (latest === undefined) throw new OperationOutcomeError(notFound);
    // Deleting a deleted resource succeeds without a new version (R4 http.html#delete).
    if (latest.method === "DELETE" || latest.resource === undefined) return;
    await super.deleteResource(resourceType, id);
    this.#record({
      method: "DELETE",
      resourceType,
      id,
      versionId: String(Number(latest.versionId) + 1),
      lastUpdated: this.#options.clock.now().toISOString(),
    });
    this.#options.onChange({ interaction: "delete", resource: deepClone(latest.resource) });
  }

  override async readResource<T extends AnyResource>(resourceType: string, id: string): Promise<T> {
    if (this.#latest.get(`${resourceType}/${id}`)?.method === "DELETE") throw new OperationOutcomeError(gone);
    return super.readResource<T>(resourceType, id);
  }

  override readVersion<T extends AnyResource>(resourceType: string, id: string, versionId: string): Promise<T> {
    const entry = this.#log.find((e) => e.resourceType === resourceType && e.id === id && e.versionId === versionId);
    if (entry === undefined) return Promise.reject(new OperationOutcomeError(notFound));
    if (entry.resource === undefined) return Promise.reject(new OperationOutcomeError(gone));
    return Promise.resolve(deepClone(entry.resource) as unknown as T);
  }

  /** Versions newest first, optionally for one type or one resource, and only after `since`. */
  versionLog(filter: { resourceType?: string; id?: string; since?: string }): { entries: VersionEntry[] } {
    const since = filter.since === undefined ? undefined : Date.parse(filter.since);
    const entries = this.#log
      .filter((e) => filter.resourceType === undefined || e.resourceType === filter.resourceType)
      .filter((e) => filter.id === undefined || e.id === filter.id)
      .filter((e) => since === undefined || Date.parse(e.lastUpdated) > since)
      .reverse()
      .map((e) => (e.resource ? { ...e, resource: deepClone(e.resource) } : e));
    return { entries };
  }

  /** Current, non-deleted resources of one type; synchronous so subscription matching sees a consistent set. */
  live(resourceType: string): StoredResource[] {
    const out: StoredResource[] = [];
    for (const entry of this.#latest.values()) {
      if (entry.resourceType === resourceType && entry.resource !== undefined && entry.method !== "DELETE") out.push(deepClone(entry.resource));
    }
    return out;
  }

  /** The current version, or undefined when absent or deleted. */
  current(resourceType: string, id: string): StoredResource | undefined {
    const entry = this.#latest.get(`${resourceType}/${id}`);
    return entry?.method === "DELETE" || entry?.resource === undefined ? undefined : deepClone(entry.resource);
  }

  async #write(input: StoredResource, method: "POST" | "PUT"): Promise<StoredResource> {
    const key = `${input.resourceType}/${input.id}`;
    const latest = this.#latest.get(key);
    const versionId = String(latest === undefined ? 1 : Number(latest.versionId) + 1);
    const lastUpdated = this.#options.clock.now().toISOString();
    // meta.versionId and meta.lastUpdated belong to the server; whatever the client sent is replaced.
    const { versionId: _v, lastUpdated: _l, ...clientMeta } = input.meta ?? {};
    const candidate = this.#options.prepare({ ...input, meta: { ...clientMeta, versionId, lastUpdated } });
    validateResource(candidate);
    const stored = (await super.createResource(candidate)) as StoredResource;
    const wasLive = latest !== undefined && latest.method !== "DELETE";
    this.#record({ method, resourceType: stored.resourceType, id: stored.id, versionId, lastUpdated, resource: deepClone(stored) });
    this.#options.onChange({ interaction: wasLive ? "update" : "create", resource: deepClone(stored) });
    return stored;
  }

  #record(entry: VersionEntry): void {
    this.#log.push(entry);
    this.#latest.set(`${entry.resourceType}/${entry.id}`, entry);
  }
}
