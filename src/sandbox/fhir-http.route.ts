import { badRequest, getStatus, isResourceType, OperationOutcomeError } from "@medplum/core";
import type { FhirRequest, FhirRouter, HttpMethod } from "@medplum/fhir-router";
import type { OperationOutcome } from "fhir/r4";
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { basePath } from "hono/route";
import { z } from "zod";
import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import { historyBundle, searchsetBundle } from "./bundles.js";
import { buildCapabilityStatement } from "./capability-statement.js";
import type { SandboxRepository, StoredResource } from "./sandbox-repository.js";
import { defaultPageSize, maxPageSize, parseSandboxSearch, type SearchRequest } from "./search-request.js";
import type { WriteLock } from "./write-lock.js";

interface FhirHttpDeps {
  readonly publicBaseUrl: string;
  readonly repo: SandboxRepository;
  readonly router: FhirRouter;
  readonly writeLock: WriteLock;
  readonly clock: Clock;
  readonly log: Logger;
}

const fhirJson = "application/fhir+json; charset=utf-8";
const maxBodyBytes = 1024 * 1024;
const resourceBody = z.looseObject({ resourceType: z.string() });
const ifMatchHeader = /^(W\/)?"[^"]+"$/;

type Query = Record<string, string | string[]>;

/** medplum derives the status from well-known outcome ids; this carries one it has no id for (415). */
class StatusOutcomeError extends OperationOutcomeError {
  constructor(
    readonly status: number,
    outcome: OperationOutcome,
  ) {
    super(outcome as never);
  }
}

function outcomeError(code: "not-supported" | "invalid", text: string, expression?: string, status = 400): OperationOutcomeError {
  return new StatusOutcomeError(status, {
    resourceType: "OperationOutcome",
    issue: [{ severity: "error", code, details: { text }, ...(expression !== undefined ? { expression: [expression] } : {}) }],
  });
}

function queryOf(params: URLSearchParams): Query {
  const query: Query = {};
  for (const [key, value] of params) {
    const existing = query[key];
    // Repeated parameters are ANDed (R4 search.html#combining); parseSearchRequest expects an array.
    query[key] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
  }
  return query;
}

function intParam(query: Query, name: string): number | undefined {
  const raw = query[name];
  const value = Array.isArray(raw) ? raw.at(-1) : raw;
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw outcomeError("invalid", `${name} must be a non-negative integer`, name);
  return Number(value);
}

function withPageSize(request: SearchRequest): SearchRequest & { count: number } {
  return { ...request, count: Math.min(request.count ?? defaultPageSize, maxPageSize) };
}

function httpDate(instant: string | undefined): string | undefined {
  return instant === undefined ? undefined : new Date(instant).toUTCString();
}

/**
 * The HTTP face of the sandbox: content types, status codes, ETag/Location headers and
 * Bundle links are done here; reads, writes and conditional logic go to medplum's FhirRouter.
 */
export function fhirHttpRoute(deps: FhirHttpDeps): Hono {
  const base = deps.publicBaseUrl.replace(/\/+$/, "");
  const app = new Hono();

  const send = (c: Context, status: number, body: object, headers: Record<string, string> = {}): Response =>
    c.body(JSON.stringify(body), status as 200, { "content-type": fhirJson, ...headers });

  const sendOutcome = (c: Context, outcome: OperationOutcome): Response => send(c, getStatus(outcome as never), outcome);

  const sendResource = (c: Context, status: number, resource: StoredResource): Response => {
    const versionId = resource.meta?.versionId;
    const lastModified = httpDate(resource.meta?.lastUpdated);
    return send(c, status, resource, {
      ...(versionId !== undefined ? { etag: `W/"${versionId}"` } : {}),
      ...(lastModified !== undefined ? { "last-modified": lastModified } : {}),
      ...(status === 201 && versionId !== undefined ? { location: `${base}/${resource.resourceType}/${resource.id}/_history/${versionId}` } : {}),
    });
  };

  app.onError((err, c) => {
    if (err instanceof StatusOutcomeError) return send(c, err.status, err.outcome);
    if (err instanceof OperationOutcomeError) return sendOutcome(c, err.outcome as OperationOutcome);
    deps.log.error({ err }, "sandbox FHIR request failed");
    return send(c, 500, { resourceType: "OperationOutcome", issue: [{ severity: "error", code: "exception", diagnostics: "internal error" }] });
  });

  app.use(
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: (c) => send(c, 413, { resourceType: "OperationOutcome", issue: [{ severity: "error", code: "too-long", diagnostics: "request body is larger than 1 MiB" }] }),
    }),
  );

  app.get("/metadata", (c) => send(c, 200, buildCapabilityStatement(base, deps.clock.now().toISOString())));

  const history = (c: Context, filter: { resourceType?: string; id?: string }, selfPath: string): Response => {
    const query = queryOf(new URL(c.req.url).searchParams);
    const since = typeof query._since === "string" ? query._since : undefined;
    if (since !== undefined && Number.isNaN(Date.parse(since))) throw outcomeError("invalid", "_since must be an instant", "_since");
    const { entries } = deps.repo.versionLog({ ...filter, ...(since !== undefined ? { since } : {}) });
    if (filter.id !== undefined && entries.length === 0 && since === undefined) throw new OperationOutcomeError(notFoundOutcome() as never);
    const count = Math.min(intParam(query, "_count") ?? defaultPageSize, maxPageSize);
    return send(c, 200, historyBundle(base, selfPath, entries, { offset: intParam(query, "_offset") ?? 0, count, since }));
  };

  const knownType = (type: string): string => {
    if (!isResourceType(type)) throw new OperationOutcomeError(notFoundOutcome("Unknown resource type") as never);
    return type;
  };

  app.get("/_history", (c) => history(c, {}, "/_history"));
  app.get("/:type/_history", (c) => {
    const type = knownType(c.req.param("type"));
    return history(c, { resourceType: type }, `/${type}/_history`);
  });
  app.get("/:type/:id/_history", (c) => {
    const type = knownType(c.req.param("type"));
    const id = c.req.param("id");
    return history(c, { resourceType: type, id }, `/${type}/${id}/_history`);
  });

  const search = async (c: Context, query: Query): Promise<Response> => {
    const request = withPageSize(parseSandboxSearch(knownType(c.req.param("type") ?? ""), query));
    const result = await deps.repo.search(request);
    return send(c, 200, searchsetBundle(base, request, result));
  };
  app.get("/:type", (c) => search(c, queryOf(new URL(c.req.url).searchParams)));
  app.post("/:type/_search", async (c) => {
    // R4 search.html#Introduction: POST _search carries the parameters form-encoded; URL ones still count.
    const type = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
    if (type !== "application/x-www-form-urlencoded") throw outcomeError("not-supported", "POST _search needs application/x-www-form-urlencoded", undefined, 415);
    const params = new URLSearchParams(new URL(c.req.url).searchParams);
    for (const [key, value] of new URLSearchParams(await c.req.text())) params.append(key, value);
    return search(c, queryOf(params));
  });

  app.all("*", async (c) => {
    const path = c.req.path.slice(basePath(c).length).replace(/^\/+/, "");
    const method = c.req.method as HttpMethod;
    const segments = path.split("/");
    // Batch/transaction, GraphQL and operations would run without the checks above (no atomic
    // transactions in memory), so the sandbox says it does not support them.
    if (path === "" || segments.some((s) => s.startsWith("$"))) throw outcomeError("not-supported", "this interaction is not supported by the sandbox server");
    knownType(segments[0] ?? "");
    const ifMatch = c.req.header("if-match");
    if (ifMatch !== undefined && !ifMatchHeader.test(ifMatch.trim())) throw outcomeError("invalid", "If-Match must be an ETag such as W/\"1\"", "If-Match");

    const body = ["POST", "PUT", "PATCH"].includes(method) ? await readBody(c, method) : undefined;
    const request: FhirRequest = {
      method,
      url: `${path}${new URL(c.req.url).search}`,
      pathname: "",
      body,
      params: {},
      query: {},
      headers: Object.fromEntries(c.req.raw.headers),
    };
    const handle = async () => {
      // medplum answers every update with 200; R4 wants 201 when a PUT created the resource.
      const existed = method !== "PUT" || segments.length !== 2 || deps.repo.current(segments[0] ?? "", segments[1] ?? "") !== undefined;
      const [outcome, resource] = await deps.router.handleRequest(request, deps.repo);
      const status = getStatus(outcome);
      return { outcome, resource, status: status === 200 && !existed ? 201 : status };
    };
    const { outcome, resource, status } = method === "GET" ? await handle() : await deps.writeLock(handle);
    if (resource === undefined || resource.resourceType === "OperationOutcome") return sendOutcome(c, (resource ?? outcome) as OperationOutcome);
    return sendResource(c, status, resource as StoredResource);
  });

  return app;
}

function notFoundOutcome(text = "Not found"): OperationOutcome {
  return { resourceType: "OperationOutcome", id: "not-found", issue: [{ severity: "error", code: "not-found", details: { text } }] };
}

async function readBody(c: Context, method: string): Promise<unknown> {
  const mediaType = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  const accepted = method === "PATCH" ? ["application/json-patch+json"] : ["application/fhir+json", "application/json"];
  if (!accepted.includes(mediaType)) throw outcomeError("not-supported", `content type must be ${accepted.join(" or ")}`, undefined, 415);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await c.req.text());
  } catch (err) {
    throw new OperationOutcomeError(badRequest("request body is not valid JSON"), { cause: err });
  }
  if (method !== "PATCH" && !resourceBody.safeParse(parsed).success) throw outcomeError("invalid", "request body must be a FHIR resource", "resourceType");
  return parsed;
}

