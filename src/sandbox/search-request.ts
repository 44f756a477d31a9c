import {
  badRequest,
  getSearchParameter,
  isResourceType,
  notFound,
  OperationOutcomeError,
  parseSearchRequest,
  splitSearchOnComma,
} from "@medplum/core";

export type SearchRequest = ReturnType<typeof parseSearchRequest>;
type Query = Record<string, string | string[] | undefined>;

/** R4 leaves the page size to the server; these match HAPI's defaults closely enough. */
export const defaultPageSize = 20;
export const maxPageSize = 1000;

/**
 * Parses a type-level search the way a real server would answer it. @medplum/core's in-memory
 * matcher silently ignores parameters it does not know and compares references as exact
 * strings, so a typo or a bare id would quietly return the wrong page instead of an error.
 * This rejects what the sandbox cannot honour and rewrites bare reference ids
 * (`patient=123` → `patient=Patient/123`), which HAPI and Medplum both accept.
 */
export function parseSandboxSearch(resourceType: string, query: Query): SearchRequest {
  if (!isResourceType(resourceType)) throw new OperationOutcomeError(unknownType());
  let request: SearchRequest;
  try {
    request = parseSearchRequest(resourceType, query);
  } catch (err) {
    throw new OperationOutcomeError(badRequest(err instanceof Error ? err.message : "invalid search"), { cause: err });
  }
  return checkSearchRequest(request);
}

/** Parses a Subscription.criteria string (`Appointment?status=booked`) with the same rules. */
export function parseCriteria(criteria: string): SearchRequest {
  const type = criteria.split("?", 1)[0] ?? "";
  if (!isResourceType(type)) throw new OperationOutcomeError(badRequest("criteria names an unknown resource type", "Subscription.criteria"));
  return checkSearchRequest(parseSearchRequest(criteria));
}

function unknownType(): ReturnType<typeof badRequest> {
  return { ...notFound, issue: [{ severity: "error", code: "not-found", details: { text: "Unknown resource type" } }] };
}

function checkSearchRequest(request: SearchRequest): SearchRequest {
  const unsupported = (name: string): never => {
    throw new OperationOutcomeError(badRequest(`${name} is not supported by the sandbox server`, name));
  };
  if (request.include?.length) unsupported("_include");
  if (request.revInclude?.length) unsupported("_revinclude");
  if (request.summary !== undefined) unsupported("_summary");
  if (request.fields?.length) unsupported("_elements");
  if (request.count !== undefined && (!Number.isInteger(request.count) || request.count < 0)) {
    throw new OperationOutcomeError(badRequest("_count must be a non-negative integer", "_count"));
  }
  if (request.offset !== undefined && (!Number.isInteger(request.offset) || request.offset < 0)) {
    throw new OperationOutcomeError(badRequest("_offset must be a non-negative integer", "_offset"));
  }
  for (const rule of request.sortRules ?? []) {
    if (getSearchParameter(request.resourceType, rule.code) === undefined) {
      throw new OperationOutcomeError(badRequest("unknown sort parameter", "_sort"));
    }
  }
  const filters = (request.filters ?? []).map((filter) => {
    const param = getSearchParameter(request.resourceType, filter.code);
    if (param === undefined) throw new OperationOutcomeError(badRequest("unknown search parameter", filter.code));
    if (param.type !== "reference") return filter;
    const targets = param.target ?? [];
    const values = splitSearchOnComma(filter.value).flatMap((value) =>
      value.includes("/") || value.includes(":") ? [value] : targets.map((target) => `${target}/${value}`),
    );
    return { ...filter, value: values.join(",") };
  });
  return { ...request, filters };
}
