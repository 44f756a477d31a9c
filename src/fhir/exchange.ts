import { FhirError } from "./fhir.port.js";

/** Constant operation labels: safe as metric labels and log fields (no ids, no search values). */
export type FhirCallOp = "read" | "vread" | "search" | "fetch-page" | "create" | "update" | "metadata" | "discovery" | "token";

/** One HTTP attempt; status is undefined when no response arrived (timeout, network error). */
export interface FhirCallInfo {
  op: FhirCallOp;
  status: number | undefined;
  ms: number;
}

export type FetchFn = typeof fetch;

export interface HttpDeps {
  fetch: FetchFn;
  timeoutMs: number;
  onCall: ((info: FhirCallInfo) => void) | undefined;
}

/** A finished HTTP exchange: the body is already read, so the deadline covered it too. */
export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * One HTTP request under a deadline (AbortController) that also covers reading the body, since a
 * server can stall mid-body as easily as before the headers. Failures before a status line become
 * a retryable FhirError with status undefined. Messages never carry the URL, which can hold ids
 * and search values.
 *
 * Redirects are not followed: a redirect could carry our Authorization header to a host we never
 * configured, and an API base that redirects is a misconfiguration best surfaced at once.
 */
export async function exchange(http: HttpDeps, op: FhirCallOp, url: URL, init: RequestInit): Promise<RawResponse> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), http.timeoutMs);
  const started = performance.now();
  let status: number | undefined;
  try {
    const res = await http.fetch(url, { ...init, redirect: "manual", signal: controller.signal });
    status = res.status;
    const text = await res.text();
    return { status: res.status, headers: res.headers, text };
  } catch (err) {
    const message = controller.signal.aborted ? `FHIR ${op} timed out after ${http.timeoutMs} ms` : `FHIR ${op} failed before a response`;
    status = undefined;
    throw new FhirError(message, undefined, true, undefined, { cause: err });
  } finally {
    clearTimeout(timer);
    try {
      http.onCall?.({ op, status, ms: performance.now() - started });
    } catch {
      // A broken metrics hook must not turn a good FHIR answer into a failure.
    }
  }
}

/** JSON.parse that answers undefined instead of throwing; callers zod-check the result. */
export function parseJson(text: string): unknown {
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
