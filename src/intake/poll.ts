import type { Bundle, FhirResource } from "fhir/r4";
import type { Redis } from "ioredis";
import type { FhirPort } from "../fhir/fhir.port.js";
import type { Logger } from "../shared/logger.js";
import type { ResourceEvent } from "./resource-event.js";
import { isFhirId } from "./resource-ref.js";
import type { SourceConfig } from "./source.config.js";
import { createWatermarks } from "./watermark.js";

export interface Poller {
  /**
   * One catch-up pass over every configured type (reference §7). A type whose pass fails keeps its
   * cursor and is retried on the next pass; the call throws only when every type failed.
   * `since` (per type): start there instead of at the current mark, for a catch-up whose start
   * point was taken before later pushes could move the mark past what was missed.
   */
  pollOnce(source: string, cfg: SourceConfig, receivedAt: string, since?: Readonly<Record<string, string>>): Promise<ResourceEvent[]>;
}

const pageSize = "100";
// A server that keeps handing out next links (or loops) must not keep a worker busy forever.
const maxPages = 500;

export function createPoller(deps: { fhir: FhirPort; baseUrl: string; redis: Redis; prefix: string; log: Logger }): Poller {
  const marks = createWatermarks(deps.redis, deps.prefix);

  /** Without a cursor, start at the server's newest change instead of replaying the whole history as new. */
  async function bootstrapCursor(type: string): Promise<string | undefined> {
    const newest = await deps.fhir.search(type, { _sort: "-_lastUpdated", _count: "1" });
    return maxLastUpdated(entriesOf(newest, type), undefined);
  }

  async function pollType(source: string, cfg: SourceConfig, type: string, receivedAt: string, seen: Set<string>, since: string | undefined): Promise<ResourceEvent[]> {
    const cursor = since ?? (await marks.get(source, type)) ?? (await bootstrapCursor(type));
    const params: Record<string, string> = { _sort: "_lastUpdated", _count: pageSize };
    if (cursor !== undefined) params._lastUpdated = `ge${new Date(Date.parse(cursor) - cfg.overlapSeconds * 1000).toISOString()}`;

    const events: ResourceEvent[] = [];
    let newest = cursor;
    let page = await deps.fhir.search(type, params);
    const visited = new Set<string>();
    for (let pages = 1; ; pages++) {
      for (const resource of entriesOf(page, type)) {
        newest = maxLastUpdated([resource], newest);
        const versionId = resource.meta?.versionId;
        const key = `${type}/${resource.id}/${versionId ?? resource.meta?.lastUpdated ?? ""}`;
        if (seen.has(key)) continue;
        seen.add(key);
        events.push({ source, resourceType: type, id: resource.id, ...(versionId !== undefined && isFhirId(versionId) ? { versionId } : {}), interaction: "unknown", receivedAt, shape: "poll" });
      }
      // §7.3: follow the server's next link exactly as given, never rebuild it.
      const next = page.link?.find((l) => l.relation === "next")?.url;
      if (next === undefined) break;
      if (visited.has(next) || pages >= maxPages) throw new Error("search paging did not terminate");
      visited.add(next);
      page = await deps.fhir.fetchPage(next);
    }
    if (cfg.historyDeletes && cursor !== undefined) events.push(...(await deletedSince(source, type, params._lastUpdated!.slice(2), receivedAt, seen)));
    // Only after the last page: a pass that fails halfway starts again from the old cursor.
    // The mark only rises: pushes processed meanwhile may have moved it past this pass's newest.
    if (newest !== undefined && newest !== cursor) await marks.advance(source, type, newest);
    return events;
  }

  /** Deletes since `since` from the type's history (a search never returns a deleted resource). */
  async function deletedSince(source: string, type: string, since: string, receivedAt: string, seen: Set<string>): Promise<ResourceEvent[]> {
    const events: ResourceEvent[] = [];
    let page = await deps.fhir.fetchPage(`${deps.baseUrl.replace(/\/+$/, "")}/${type}/_history?_since=${encodeURIComponent(since)}&_count=${pageSize}`);
    const visited = new Set<string>();
    for (let pages = 1; ; pages++) {
      for (const deleted of deletesOf(page, type)) {
        const key = `${type}/${deleted.id}/deleted`;
        if (seen.has(key)) continue;
        seen.add(key);
        events.push({ source, resourceType: type, id: deleted.id, ...(deleted.versionId !== undefined ? { versionId: deleted.versionId } : {}), interaction: "delete", receivedAt, shape: "poll" });
      }
      const next = page.link?.find((l) => l.relation === "next")?.url;
      if (next === undefined) break;
      if (visited.has(next) || pages >= maxPages) throw new Error("history paging did not terminate");
      visited.add(next);
      page = await deps.fhir.fetchPage(next);
    }
    return events;
  }

  return {
    async pollOnce(source, cfg, receivedAt, since) {
      const seen = new Set<string>();
      const events: ResourceEvent[] = [];
      const failures: unknown[] = [];
      for (const type of cfg.resourceTypes) {
        try {
          events.push(...(await pollType(source, cfg, type, receivedAt, seen, since?.[type])));
        } catch (err) {
          failures.push(err);
          deps.log.warn({ err, source, resourceType: type }, "catch-up search failed; cursor kept");
        }
      }
      if (failures.length === cfg.resourceTypes.length) throw failures[0];
      return events;
    },
  };
}

type Found = FhirResource & { id: string };

/** Search results only: `_include`d resources and OperationOutcome entries are not changes of this type. */
function entriesOf(bundle: Bundle, type: string): Found[] {
  return (bundle.entry ?? []).flatMap((e) => {
    const r = e.resource;
    if (r?.resourceType !== type || r.id === undefined || !isFhirId(r.id)) return [];
    if (e.search?.mode !== undefined && e.search.mode !== "match") return [];
    return [r as Found];
  });
}

/**
 * History entries of deletes carry no resource: request DELETE with url `Type/id`, the version in
 * response.etag (W/"4"). The id comes from the request url, else from fullUrl.
 */
function deletesOf(bundle: Bundle, type: string): Array<{ id: string; versionId?: string }> {
  return (bundle.entry ?? []).flatMap((e) => {
    if (e.request?.method !== "DELETE") return [];
    const path = (e.request.url ?? "").split("?")[0] ?? "";
    const fromUrl = path.split("/");
    const fromFull = (e.fullUrl ?? "").split("/");
    const id = fromUrl[0] === type ? fromUrl[1] : fromFull[fromFull.length - 2] === type ? fromFull[fromFull.length - 1] : undefined;
    if (id === undefined || !isFhirId(id)) return [];
    const version = /^(?:W\/)?"([^"]+)"$/.exec(e.response?.etag ?? "")?.[1];
    return [{ id, ...(version !== undefined && isFhirId(version) ? { versionId: version } : {}) }];
  });
}

/** §7.1: the cursor is the server's own clock reading, kept as the server wrote it. */
function maxLastUpdated(resources: readonly FhirResource[], current: string | undefined): string | undefined {
  let best = current;
  for (const r of resources) {
    const candidate = r.meta?.lastUpdated;
    if (candidate === undefined || Number.isNaN(Date.parse(candidate))) continue;
    if (best === undefined || Date.parse(candidate) > Date.parse(best)) best = candidate;
  }
  return best;
}
