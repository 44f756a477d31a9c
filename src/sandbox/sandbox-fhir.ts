/**
 * Embedded sandbox FHIR R4 server, used when no FHIR_BASE_URL is configured so `npm start`
 * runs the whole pipeline on a fresh machine. It is a real (in-memory) server, built on
 * medplum's FhirRouter and MemoryRepository, not a test double. Data is lost on restart.
 *
 * Supported (application/fhir+json; application/json is accepted too):
 * - read, vread, update (PUT, with `If-Match: W/"n"` → 412 on mismatch, update-as-create),
 *   patch (JSON Patch), delete (deleted resources answer 410; deleting again is a no-op),
 *   conditional update/delete by search.
 * - create (201 + Location + `ETag: W/"n"`), conditional create with `If-None-Exist`
 *   (0 matches → 201, 1 → 200 with the match, >1 → 412). Client ids on create are ignored.
 * - meta.versionId (1, 2, 3, …) and meta.lastUpdated are set by the server; every write is
 *   validated against the R4 StructureDefinitions; errors are OperationOutcomes.
 * - search `GET /{type}?…` and `POST /{type}/_search` (form-encoded): any R4 SearchParameter
 *   @medplum/core can match in memory, including `_id`, `identifier=system|value`, `patient`,
 *   `subject` (bare ids are accepted), `status`, `_lastUpdated=gt…`, `_sort`, `_count`
 *   (default 20, max 1000) with Bundle `next` links (`_offset`). Unknown parameters → 400.
 * - history: instance, type and system, newest first, `_since`, `_count`/`_offset` paging;
 *   a deleted version is an entry with request.method DELETE and no resource.
 * - `GET /metadata`: a minimal CapabilityStatement.
 * - R4 Subscriptions with channel.type rest-hook: `requested` becomes `active` on write;
 *   criteria are matched against each new version; delivery is asynchronous, in write order
 *   per Subscription: payload set → `PUT {endpoint}/{Type}/{id}` with the resource, no payload
 *   → `POST {endpoint}` with no body; every channel.header is sent. Deletes are delivered as
 *   `DELETE {endpoint}/{Type}/{id}` only with HAPI's subscription-send-delete-messages extension.
 *   Failed deliveries are retried with backoff (HAPI's subscription-delivery-retry-count, default
 *   3 retries); after the last failure the Subscription becomes `error` with an `error` text.
 *   Redirects are not followed.
 *
 * Not supported: batch/transaction Bundles, operations (`$…`), GraphQL, `_include`,
 * `_revinclude`, `_summary`, `_elements`, chained parameters, XML, compartment search,
 * topic-based (backport/R5) subscriptions, non-rest-hook channels, Subscription.end, authentication.
 */
import { FhirRouter } from "@medplum/fhir-router";
import type { Hono } from "hono";
import { systemClock, type Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import { loadFhirDefinitions } from "./fhir-definitions.js";
import { fhirHttpRoute } from "./fhir-http.route.js";
import { createRestHookDelivery, exponentialBackoff } from "./rest-hook-delivery.js";
import { prepareSubscription } from "./rest-hook-subscription.js";
import { SandboxRepository } from "./sandbox-repository.js";
import { seedDemoData, type SandboxSeed } from "./seed.js";
import { createWriteLock } from "./write-lock.js";

export interface SandboxFhir {
  /** Hono sub-app; the lead mounts it with app.route("/sandbox/fhir", sandbox.app) */
  readonly app: Hono;
  /** Seeds demo data once (idempotent); returns the ids it created. */
  seed(): Promise<SandboxSeed>;
  /** Waits for in-flight subscription deliveries, stops retries. */
  close(): Promise<void>;
}

interface SandboxFhirDeps {
  /** Where clients reach the sandbox, e.g. http://127.0.0.1:8080/sandbox/fhir (fullUrl, Location, links). */
  publicBaseUrl: string;
  log: Logger;
  fetch?: typeof fetch;
  clock?: Clock;
  /** Rest-hook retry timing; tests shorten it. Defaults: 1 s doubling to 30 s, 10 s timeout. */
  delivery?: { retryDelayMs?: (attempt: number) => number; timeoutMs?: number };
}

export function createSandboxFhir(deps: SandboxFhirDeps): SandboxFhir {
  loadFhirDefinitions();
  const clock = deps.clock ?? systemClock;
  const log = deps.log.child({ component: "sandbox-fhir" });
  const writeLock = createWriteLock();
  // The repository and the delivery engine need each other; the repository only calls onChange
  // on a write, and no write happens before both exist.
  const repo = new SandboxRepository({
    clock,
    prepare: (resource) => (resource.resourceType === "Subscription" ? prepareSubscription(resource) : resource),
    onChange: (change) => delivery.notify(change),
  });
  const delivery = createRestHookDelivery({
    repo,
    fetch: deps.fetch ?? globalThis.fetch,
    // The delivery binds its own component; a child of ours would repeat the key in every line.
    log: deps.log,
    writeLock,
    retryDelayMs: deps.delivery?.retryDelayMs ?? exponentialBackoff,
    timeoutMs: deps.delivery?.timeoutMs ?? 10_000,
  });
  const app = fhirHttpRoute({ publicBaseUrl: deps.publicBaseUrl, repo, router: new FhirRouter(), writeLock, clock, log });
  return {
    app,
    seed: () => writeLock(() => seedDemoData(repo, clock.now())),
    close: () => delivery.close(),
  };
}
