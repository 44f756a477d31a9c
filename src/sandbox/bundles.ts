import { formatSearchQuery } from "@medplum/core";
import type { Bundle, BundleEntry, FhirResource } from "fhir/r4";
import type { SearchRequest } from "./search-request.js";
import type { StoredResource, VersionEntry } from "./sandbox-repository.js";

/** R4 http.html#search: every entry has a fullUrl, paging is by Bundle.link next. */
export function searchsetBundle(
  base: string,
  request: SearchRequest & { count: number },
  result: { entry?: { resource?: StoredResource }[]; total?: number },
): Bundle {
  const offset = request.offset ?? 0;
  const total = result.total ?? 0;
  const pageUrl = (at: number) => `${base}/${request.resourceType}${formatSearchQuery({ ...request, offset: at })}`;
  const entry: BundleEntry[] = (result.entry ?? []).flatMap((e) =>
    e.resource === undefined
      ? []
      : [{ fullUrl: `${base}/${e.resource.resourceType}/${e.resource.id}`, resource: e.resource as unknown as FhirResource, search: { mode: "match" as const } }],
  );
  return {
    resourceType: "Bundle",
    type: "searchset",
    total,
    link: [
      { relation: "self", url: pageUrl(offset) },
      ...(request.count > 0 && offset + request.count < total ? [{ relation: "next", url: pageUrl(offset + request.count) }] : []),
    ],
    ...(entry.length > 0 ? { entry } : {}),
  };
}

const responseStatus = { POST: "201 Created", PUT: "200 OK", DELETE: "204 No Content" } as const;

/**
 * R4 http.html#history: newest first; each entry carries request and response, and a
 * deleted version is an entry with request.method DELETE and no resource.
 */
export function historyBundle(
  base: string,
  selfPath: string,
  versions: readonly VersionEntry[],
  page: { offset: number; count: number; since: string | undefined },
): Bundle {
  const slice = versions.slice(page.offset, page.offset + page.count);
  const pageUrl = (at: number) => {
    const params = new URLSearchParams();
    if (page.since !== undefined) params.set("_since", page.since);
    params.set("_count", String(page.count));
    if (at > 0) params.set("_offset", String(at));
    return `${base}${selfPath}?${params.toString()}`;
  };
  const entry: BundleEntry[] = slice.map((v) => ({
    fullUrl: `${base}/${v.resourceType}/${v.id}`,
    ...(v.resource !== undefined ? { resource: v.resource as unknown as FhirResource } : {}),
    request: { method: v.method, url: v.method === "POST" ? v.resourceType : `${v.resourceType}/${v.id}` },
    response: { status: responseStatus[v.method], etag: `W/"${v.versionId}"`, lastModified: v.lastUpdated },
  }));
  return {
    resourceType: "Bundle",
    type: "history",
    total: versions.length,
    link: [
      { relation: "self", url: pageUrl(page.offset) },
      ...(page.count > 0 && page.offset + page.count < versions.length ? [{ relation: "next", url: pageUrl(page.offset + page.count) }] : []),
    ],
    ...(entry.length > 0 ? { entry } : {}),
  };
}
