/*
 * Outbound FHIR REST client: a thin wrapper over fetch, deliberately not fhir-kit-client.
 *
 * What this adapter must control is exactly what fhir-kit-client hides or makes awkward: raw
 * status codes (404/410 → undefined, 200 vs 201 on conditional create, 409/412 on If-Match),
 * per-call headers (If-None-Exist, If-Match, Prefer), the server's OperationOutcome on errors,
 * a deadline per attempt that also covers the body, retries that are limited to 429/5xx/network
 * and honour Retry-After, a 401 → refresh-once path, and a hard rule that the bearer token never
 * leaves the base URL's origin (fetchPage on a hostile `next` link, redirects). Each of those is a
 * few lines on top of fetch; with fhir-kit-client each would be a workaround around its request
 * layer. The REST surface we use (read, vread, search, page, create, update) is small.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { Bundle, FhirResource } from "fhir/r4";
import { z } from "zod";
import type { Logger } from "../shared/logger.js";
import { systemClock, type Clock } from "../shared/clock.js";
import { createFhirAuth } from "./auth.js";
import { exchange, parseJson, type FetchFn, type FhirCallInfo, type FhirCallOp, type HttpDeps, type RawResponse } from "./exchange.js";
import type { FhirClientConfig } from "./fhir.config.js";
import { FhirError, type FhirPort } from "./fhir.port.js";
import { issueCodesSuffix, safeOutcome } from "./operation-outcome.js";
import { backoffDelayMs, isRetryableStatus, maxInlineWaitMs, retryAfterMs } from "./retry-policy.js";

export interface FhirClientDeps {
  fetch?: FetchFn;
  clock?: Clock;
  /** Waits between retries. Tests pass one that records the delay and returns at once. */
  sleep?: (ms: number) => Promise<void>;
  /** Jitter source in [0, 1). */
  random?: () => number;
  /** Called once per HTTP attempt (token and discovery requests included), for latency metrics. */
  onCall?: (info: FhirCallInfo) => void;
}

export type FhirClient = FhirPort & {
  /** GET [base]/metadata once, no retries: for readiness probes. Never throws. */
  checkReachable(): Promise<boolean>;
  /** `CapabilityStatement.software.name` (e.g. "medplum", "HAPI FHIR Server"); undefined when unreadable. Never throws. */
  serverSoftware(): Promise<string | undefined>;
};

const fhirJson = "application/fhir+json";
// R4 datatypes: type names and ids (https://hl7.org/fhir/R4/datatypes.html#id).
const resourceTypePattern = /^[A-Z][A-Za-z]{1,63}$/;
const idPattern = /^[A-Za-z0-9\-.]{1,64}$/;
const headerValuePattern = /^[\x20-\x7e]*$/;

const resourceSchema = z.looseObject({ resourceType: z.string().regex(resourceTypePattern) });

interface Call {
  op: FhirCallOp;
  method: "GET" | "POST" | "PUT";
  url: URL;
  headers?: Record<string, string>;
  body?: string;
  /** False for a plain create: after a timeout or a 500 the server may already have stored it. */
  idempotent: boolean;
  retries: number;
}

type Attempt = { kind: "response"; res: RawResponse } | { kind: "not-sent"; err: FhirError } | { kind: "no-response"; err: FhirError };

export function createFhirClient(cfg: FhirClientConfig, log: Logger, deps: FhirClientDeps = {}): FhirClient {
  const base = new URL(cfg.baseUrl);
  const clock = deps.clock ?? systemClock;
  const sleep = deps.sleep ?? ((ms: number) => delay(ms));
  const random = deps.random ?? Math.random;
  // Looked up per call so a test's msw (which patches globalThis.fetch) applies whenever it starts.
  const http: HttpDeps = { fetch: deps.fetch ?? ((input, init) => globalThis.fetch(input, init)), timeoutMs: cfg.timeoutMs, onCall: deps.onCall };
  const auth = createFhirAuth(cfg.auth, { http, clock, baseUrl: cfg.baseUrl });
  const clientLog = log.child({ component: "fhir-client" });

  async function attempt(call: Call, state: { refreshed: boolean }): Promise<Attempt> {
    // The only place a request is built with our credentials: it must target the base origin.
    if (call.url.origin !== base.origin) {
      return { kind: "not-sent", err: new FhirError(`FHIR ${call.op} refused: URL is not on the FHIR base origin`, undefined, false) };
    }
    const send = async (authorization: string | undefined): Promise<Attempt> => {
      const headers: Record<string, string> = { accept: fhirJson, ...call.headers };
      if (call.body !== undefined) headers["content-type"] = fhirJson;
      if (authorization !== undefined) headers.authorization = authorization;
      try {
        return { kind: "response", res: await exchange(http, call.op, call.url, { method: call.method, headers, body: call.body ?? null }) };
      } catch (err) {
        if (err instanceof FhirError) return { kind: "no-response", err };
        throw err;
      }
    };
    const authorize = async (): Promise<{ header: string | undefined } | Attempt> => {
      try {
        return { header: await auth.authorization() };
      } catch (err) {
        if (err instanceof FhirError) return { kind: "not-sent", err };
        throw err;
      }
    };

    const first = await authorize();
    if ("kind" in first) return first;
    const result = await send(first.header);
    // Reference §12: on 401 drop the cached token, fetch a new one, retry once (per call).
    if (result.kind === "response" && result.res.status === 401 && first.header !== undefined && !state.refreshed && auth.rejected(first.header)) {
      state.refreshed = true;
      clientLog.info({ op: call.op }, "FHIR server rejected the access token; refreshing once");
      const second = await authorize();
      return "kind" in second ? second : send(second.header);
    }
    return result;
  }

  /** How long to wait before the next try, or undefined to stop and surface this outcome. */
  function retryWait(call: Call, outcome: Attempt, retry: number): number | undefined {
    if (retry >= call.retries) return undefined;
    switch (outcome.kind) {
      case "not-sent":
        return outcome.err.retryable ? backoffDelayMs(retry, random) : undefined;
      case "no-response":
        return call.idempotent ? backoffDelayMs(retry, random) : undefined;
      case "response": {
        const { status, headers } = outcome.res;
        if (!isRetryableStatus(status)) return undefined;
        // 429 and 503 say "not processed"; other 5xx leave a plain create in doubt.
        if (!call.idempotent && status !== 429 && status !== 503) return undefined;
        const after = retryAfterMs(headers.get("retry-after"), clock.now());
        if (after === undefined) return backoffDelayMs(retry, random);
        return after <= maxInlineWaitMs ? after : undefined;
      }
    }
  }

  async function run(call: Call): Promise<RawResponse> {
    const state = { refreshed: false };
    for (let retry = 0; ; retry++) {
      const outcome = await attempt(call, state);
      const wait = retryWait(call, outcome, retry);
      if (wait === undefined) {
        if (outcome.kind !== "response") throw outcome.err;
        return outcome.res;
      }
      const status = outcome.kind === "response" ? outcome.res.status : outcome.err.status;
      clientLog.warn({ op: call.op, status, retry: retry + 1, waitMs: wait }, "FHIR call failed; retrying");
      await sleep(wait);
    }
  }

  function failure(op: FhirCallOp, res: RawResponse, retryable = isRetryableStatus(res.status)): FhirError {
    if (res.status >= 300 && res.status < 400) {
      return new FhirError(`FHIR ${op} answered with a redirect (HTTP ${res.status}); configure the final base URL`, res.status, false);
    }
    const outcome = safeOutcome(parseJson(res.text));
    if (res.status === 401 || res.status === 403) {
      clientLog.warn({ op, status: res.status }, "FHIR server refused our credentials or scopes");
    }
    return new FhirError(`FHIR ${op} failed: HTTP ${res.status}${issueCodesSuffix(outcome)}`, res.status, retryable, outcome);
  }

  function resourceOf<T>(op: FhirCallOp, res: RawResponse, expectedType: string | undefined): T {
    const parsed = resourceSchema.safeParse(parseJson(res.text));
    if (!parsed.success) throw new FhirError(`FHIR ${op} answered HTTP ${res.status} without a FHIR resource`, res.status, false);
    if (expectedType !== undefined && parsed.data.resourceType !== expectedType) {
      throw new FhirError(`FHIR ${op} answered with an unexpected resourceType`, res.status, false);
    }
    return parsed.data as unknown as T;
  }

  function typeUrl(op: FhirCallOp, resourceType: string): URL {
    if (!resourceTypePattern.test(resourceType)) throw new FhirError(`FHIR ${op}: invalid resource type`, undefined, false);
    return new URL(`${cfg.baseUrl}/${resourceType}`);
  }

  function instanceUrl(op: FhirCallOp, resourceType: string, id: string, versionId?: string): URL {
    const segments = [id, ...(versionId !== undefined ? ["_history", versionId] : [])];
    if (!idPattern.test(id) || (versionId !== undefined && !idPattern.test(versionId))) {
      throw new FhirError(`FHIR ${op}: invalid resource id or version`, undefined, false);
    }
    return new URL(`${typeUrl(op, resourceType).href}/${segments.join("/")}`);
  }

  async function getResource<T>(op: "read" | "vread", url: URL, resourceType: string): Promise<T | undefined> {
    const res = await run({ op, method: "GET", url, idempotent: true, retries: cfg.retries });
    if (res.status === 404 || res.status === 410) return undefined;
    if (res.status !== 200) throw failure(op, res);
    return withEtagVersion(resourceOf<T>(op, res, resourceType), res);
  }

  async function getBundle(op: "search" | "fetch-page", url: URL): Promise<Bundle> {
    const res = await run({ op, method: "GET", url, idempotent: true, retries: cfg.retries });
    if (res.status !== 200) throw failure(op, res);
    return resourceOf<Bundle>(op, res, "Bundle");
  }

  /**
   * The stored resource after a create or update. Servers that ignore `Prefer: return=representation`
   * answer with an empty body and a Location header; then we read that version back.
   */
  async function written<T extends FhirResource>(op: "create" | "update", res: RawResponse, resourceType: string): Promise<T> {
    if (res.text.trim() !== "") return withEtagVersion(resourceOf<T>(op, res, resourceType), res);
    const location = res.headers.get("location") ?? res.headers.get("content-location");
    const match = location === null ? null : /\/?([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([A-Za-z0-9\-.]{1,64}))?\/?$/.exec(new URL(location, `${cfg.baseUrl}/`).pathname);
    if (match?.[1] !== resourceType || match[2] === undefined) {
      throw new FhirError(`FHIR ${op} answered HTTP ${res.status} without a resource or Location`, res.status, false);
    }
    const readBack =
      match[3] !== undefined
        ? await getResource<T>("vread", instanceUrl("vread", resourceType, match[2], match[3]), resourceType)
        : await getResource<T>("read", instanceUrl("read", resourceType, match[2]), resourceType);
    if (readBack === undefined) throw new FhirError(`FHIR ${op} succeeded but the resource cannot be read back`, 404, true);
    return readBack;
  }


  /** GET [base]/metadata once, no retries (probes and sync call it); undefined when it is not a CapabilityStatement. */
  async function capabilityStatement(): Promise<Record<string, unknown> | undefined> {
    try {
      const res = await run({ op: "metadata", method: "GET", url: new URL(`${cfg.baseUrl}/metadata`), idempotent: true, retries: 0 });
      const parsed = res.status === 200 ? resourceSchema.safeParse(parseJson(res.text)).data : undefined;
      return parsed?.resourceType === "CapabilityStatement" ? parsed : undefined;
    } catch {
      return undefined;
    }
  }

  return {
    baseUrl: cfg.baseUrl,

    // Every method is async so that argument checks reject the promise instead of throwing.
    async read<T extends FhirResource = FhirResource>(resourceType: T["resourceType"], id: string) {
      return getResource<T>("read", instanceUrl("read", resourceType, id), resourceType);
    },

    async vread<T extends FhirResource = FhirResource>(resourceType: T["resourceType"], id: string, versionId: string) {
      return getResource<T>("vread", instanceUrl("vread", resourceType, id, versionId), resourceType);
    },

    async search(resourceType, params) {
      const url = typeUrl("search", resourceType);
      for (const [name, value] of Object.entries(params)) url.searchParams.append(name, value);
      return getBundle("search", url);
    },

    async fetchPage(pageUrl) {
      if (!URL.canParse(pageUrl)) throw new FhirError("FHIR fetch-page: not an absolute URL", undefined, false);
      const url = new URL(pageUrl);
      // A server-supplied link must not be able to send our token to another host.
      if (url.origin !== base.origin) {
        throw new FhirError("FHIR fetch-page refused: link points to another origin than the FHIR base URL", undefined, false);
      }
      return getBundle("fetch-page", url);
    },

    async create<T extends FhirResource>(resource: T, options?: { ifNoneExist?: string }) {
      const ifNoneExist = options?.ifNoneExist;
      if (ifNoneExist !== undefined && !headerValuePattern.test(ifNoneExist)) {
        throw new FhirError("FHIR create: If-None-Exist must be printable ASCII", undefined, false);
      }
      const res = await run({
        op: "create",
        method: "POST",
        url: typeUrl("create", resource.resourceType),
        headers: { prefer: "return=representation", ...(ifNoneExist !== undefined ? { "if-none-exist": ifNoneExist } : {}) },
        body: JSON.stringify(resource),
        // A conditional create finds its own earlier success, so repeating it is safe.
        idempotent: ifNoneExist !== undefined,
        retries: cfg.retries,
      });
      // 412 here means several matches already exist (reference §10.4): not retryable, alert.
      if (res.status !== 200 && res.status !== 201) throw failure("create", res);
      // A conditional create answers 200 with the match and creates nothing.
      const created = res.status === 201 || ifNoneExist === undefined;
      return { resource: await written<T>("create", res, resource.resourceType), created };
    },

    async update<T extends FhirResource>(resource: T & { id: string }, options?: { ifMatch?: string }) {
      const ifMatch = options?.ifMatch === undefined ? undefined : weakEtag(options.ifMatch);
      if (ifMatch !== undefined && !headerValuePattern.test(ifMatch)) {
        throw new FhirError("FHIR update: If-Match must be printable ASCII", undefined, false);
      }
      const res = await run({
        op: "update",
        method: "PUT",
        url: instanceUrl("update", resource.resourceType, resource.id),
        headers: { prefer: "return=representation", ...(ifMatch !== undefined ? { "if-match": ifMatch } : {}) },
        body: JSON.stringify(resource),
        idempotent: true,
        retries: cfg.retries,
      });
      if (res.status !== 200 && res.status !== 201) {
        // A version conflict is fixed by re-reading and merging, which a job retry does; the
        // caller can also act on err.isConflict directly (reference §10.4).
        throw failure("update", res, res.status === 409 || res.status === 412 || isRetryableStatus(res.status));
      }
      return written<T>("update", res, resource.resourceType);
    },

    async checkReachable() {
      return (await capabilityStatement()) !== undefined;
    },

    async serverSoftware() {
      const software = (await capabilityStatement())?.software;
      return z.object({ name: z.string() }).safeParse(software).data?.name;
    },
  };
}

/**
 * The version a server names only in its ETag (W/"n", FHIR http.html#versioning) is copied to
 * meta.versionId when the body has none, so callers find it in one place (If-Match write-back).
 */
function withEtagVersion<T>(resource: T, res: RawResponse): T {
  const r = resource as { meta?: { versionId?: string } };
  if (r.meta?.versionId !== undefined) return resource;
  const versionId = /^(?:W\/)?"([A-Za-z0-9\-.]{1,64})"$/.exec(res.headers.get("etag")?.trim() ?? "")?.[1];
  return versionId === undefined ? resource : { ...resource, meta: { ...r.meta, versionId } };
}

/** Callers may pass a bare versionId; the header wants an ETag, which FHIR servers send weak. */
function weakEtag(value: string): string {
  return /^(W\/)?".*"$/.test(value) ? value : `W/"${value}"`;
}
