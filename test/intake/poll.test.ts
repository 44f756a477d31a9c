import type { Appointment, Bundle, FhirResource } from "fhir/r4";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { FhirError } from "../../src/fhir/fhir.port.js";
import { createPoller } from "../../src/intake/poll.js";
import { sourceConfigSchema } from "../../src/intake/source.config.js";
import { createLogger } from "../../src/shared/logger.js";
import { FakeFhir } from "../fakes/fhir.fake.js";
import { ownedRedisPrefix } from "../support/redis-prefix.js";

const redis = new Redis("redis://127.0.0.1:6379", { maxRetriesPerRequest: 1 });
afterAll(async () => {
  await redis.quit();
});


/** FakeFhir with scripted search pages, so paging and failures can be driven exactly. */
class PagedFhir extends FakeFhir {
  readonly searches: Array<{ type: string; params: Readonly<Record<string, string>> }> = [];
  readonly fetched: string[] = [];
  readonly firstPages = new Map<string, Bundle>();
  readonly pages = new Map<string, Bundle>();
  readonly failing = new Set<string>();
  newest: FhirResource | undefined;

  override search(type: string, params: Readonly<Record<string, string>>): Promise<Bundle> {
    this.searches.push({ type, params });
    if (this.failing.has(type)) return Promise.reject(new FhirError("search failed", 503, true));
    if (params._sort === "-_lastUpdated") return Promise.resolve(searchset(this.newest ? [this.newest] : []));
    return Promise.resolve(this.firstPages.get(type) ?? searchset([]));
  }

  override fetchPage(url: string): Promise<Bundle> {
    this.fetched.push(url);
    if (this.failing.has(url)) return Promise.reject(new FhirError("page failed", 503, true));
    const page = this.pages.get(url);
    return page ? Promise.resolve(page) : Promise.reject(new FhirError("unknown page", 404, false));
  }
}

function appointment(id: string, versionId: string, lastUpdated: string): Appointment {
  return { resourceType: "Appointment", id, meta: { versionId, lastUpdated }, status: "booked", participant: [{ actor: { reference: "Patient/pat-1001" }, status: "accepted" }] };
}

function searchset(resources: readonly FhirResource[], next?: string): Bundle {
  return {
    resourceType: "Bundle",
    type: "searchset",
    link: [{ relation: "self", url: "https://fhir.example.org/fhir/Appointment?_sort=_lastUpdated" }, ...(next ? [{ relation: "next", url: next }] : [])],
    entry: resources.map((resource) => ({ fullUrl: `https://fhir.example.org/fhir/${resource.resourceType}/${resource.id}`, resource, search: { mode: "match" as const } })),
  };
}

const cfg = sourceConfigSchema.parse({ auth: { type: "none" }, mode: "poll", resourceTypes: ["Appointment"], overlapSeconds: 120 });
const receivedAt = "2025-03-04T09:30:00.000Z";
const baseUrl = "https://fhir.example.org/fhir";
const log = createLogger("silent");
const cursorKey = (prefix: string, type = "Appointment") => `${prefix}:intake:poll-cursor:ehr:${type}`;

describe("poller", () => {
  it("searches from the stored cursor minus the overlap, sorted, 100 per page", async () => {
    const prefix = ownedRedisPrefix(redis);
    const fhir = new PagedFhir();
    await redis.set(cursorKey(prefix), "2025-03-04T09:00:00Z");
    await createPoller({ fhir, baseUrl, redis, prefix, log }).pollOnce("ehr", cfg, receivedAt);
    expect(fhir.searches).toEqual([{ type: "Appointment", params: { _sort: "_lastUpdated", _count: "100", _lastUpdated: "ge2025-03-04T08:58:00.000Z" } }]);
  });

  it("starts a new source at the server's newest change instead of replaying all history", async () => {
    const prefix = ownedRedisPrefix(redis);
    const fhir = new PagedFhir();
    fhir.newest = appointment("apt-9", "2", "2025-03-04T09:10:00.000Z");
    fhir.firstPages.set("Appointment", searchset([appointment("apt-9", "2", "2025-03-04T09:10:00.000Z")]));
    const events = await createPoller({ fhir, baseUrl, redis, prefix, log }).pollOnce("ehr", cfg, receivedAt);
    expect(fhir.searches[0]?.params).toEqual({ _sort: "-_lastUpdated", _count: "1" });
    expect(fhir.searches[1]?.params._lastUpdated).toBe("ge2025-03-04T09:08:00.000Z");
    expect(events).toEqual([{ source: "ehr", resourceType: "Appointment", id: "apt-9", versionId: "2", interaction: "unknown", receivedAt, shape: "poll" }]);
  });

  it("treats an unreadable cursor as none: starts at the newest change, as a new source does, instead of failing every pass", async () => {
    const prefix = ownedRedisPrefix(redis);
    const fhir = new PagedFhir();
    await redis.set(cursorKey(prefix), "not-a-time");
    fhir.newest = appointment("apt-9", "2", "2025-03-04T09:10:00.000Z");
    fhir.firstPages.set("Appointment", searchset([appointment("apt-9", "2", "2025-03-04T09:10:00.000Z")]));
    const events = await createPoller({ fhir, baseUrl, redis, prefix, log }).pollOnce("ehr", cfg, receivedAt);
    expect(events.map((e) => e.id)).toEqual(["apt-9"]);
    expect(fhir.searches.map((s) => s.params)).toEqual([
      { _sort: "-_lastUpdated", _count: "1" },
      { _sort: "_lastUpdated", _count: "100", _lastUpdated: "ge2025-03-04T09:08:00.000Z" },
    ]);
  });

  it("follows next links exactly as given and advances the cursor to the newest server timestamp after the last page", async () => {
    const prefix = ownedRedisPrefix(redis);
    const fhir = new PagedFhir();
    await redis.set(cursorKey(prefix), "2025-03-04T09:00:00Z");
    const next = "https://fhir.example.org/fhir?_getpages=8f0c2a&_getpagesoffset=100&_count=100&_pretty=true&_bundletype=searchset";
    fhir.firstPages.set("Appointment", searchset([appointment("apt-1", "4", "2025-03-04T09:01:00.000Z"), appointment("apt-2", "1", "2025-03-04T09:02:30.500Z")], next));
    // The same version shows up again on the next page (the overlap, or an unstable sort): returned once.
    fhir.pages.set(next, searchset([appointment("apt-2", "1", "2025-03-04T09:02:30.500Z"), appointment("apt-3", "7", "2025-03-04T09:05:12.345Z")]));

    const events = await createPoller({ fhir, baseUrl, redis, prefix, log }).pollOnce("ehr", cfg, receivedAt);

    expect(fhir.fetched).toEqual([next]);
    expect(events.map((e) => `${e.id}@${e.versionId}`)).toEqual(["apt-1@4", "apt-2@1", "apt-3@7"]);
    expect(await redis.get(cursorKey(prefix))).toBe("2025-03-04T09:05:12.345Z");
  });

  it("keeps the cursor when a page fails halfway through a pass, so the next pass repeats it", async () => {
    const prefix = ownedRedisPrefix(redis);
    const fhir = new PagedFhir();
    await redis.set(cursorKey(prefix), "2025-03-04T09:00:00Z");
    const next = "https://fhir.example.org/fhir/Appointment?_page=2";
    fhir.firstPages.set("Appointment", searchset([appointment("apt-1", "4", "2025-03-04T09:20:00.000Z")], next));
    fhir.failing.add(next);

    await expect(createPoller({ fhir, baseUrl, redis, prefix, log }).pollOnce("ehr", cfg, receivedAt)).rejects.toBeInstanceOf(FhirError);
    expect(await redis.get(cursorKey(prefix))).toBe("2025-03-04T09:00:00Z");
  });

  it("still returns and advances the types that succeeded when another type fails", async () => {
    const prefix = ownedRedisPrefix(redis);
    const fhir = new PagedFhir();
    const both = { ...cfg, resourceTypes: ["Appointment", "DiagnosticReport"] as typeof cfg.resourceTypes };
    await redis.set(cursorKey(prefix), "2025-03-04T09:00:00Z");
    await redis.set(cursorKey(prefix, "DiagnosticReport"), "2025-03-04T09:00:00Z");
    fhir.firstPages.set("Appointment", searchset([appointment("apt-1", "4", "2025-03-04T09:20:00.000Z")]));
    fhir.failing.add("DiagnosticReport");

    const events = await createPoller({ fhir, baseUrl, redis, prefix, log }).pollOnce("ehr", both, receivedAt);
    expect(events.map((e) => e.id)).toEqual(["apt-1"]);
    expect(await redis.get(cursorKey(prefix))).toBe("2025-03-04T09:20:00.000Z");
    expect(await redis.get(cursorKey(prefix, "DiagnosticReport"))).toBe("2025-03-04T09:00:00Z");
  });

  it("keeps the cursor when nothing changed", async () => {
    const prefix = ownedRedisPrefix(redis);
    const fhir = new PagedFhir();
    await redis.set(cursorKey(prefix), "2025-03-04T09:00:00Z");
    expect(await createPoller({ fhir, baseUrl, redis, prefix, log }).pollOnce("ehr", cfg, receivedAt)).toEqual([]);
    expect(await redis.get(cursorKey(prefix))).toBe("2025-03-04T09:00:00Z");
  });

  it("ignores _include'd resources and OperationOutcome entries on a search page", async () => {
    const prefix = ownedRedisPrefix(redis);
    const fhir = new PagedFhir();
    await redis.set(cursorKey(prefix), "2025-03-04T09:00:00Z");
    const page = searchset([appointment("apt-1", "4", "2025-03-04T09:01:00.000Z")]);
    page.entry?.push(
      { resource: { resourceType: "Patient", id: "pat-1001", meta: { lastUpdated: "2025-03-04T09:29:00Z" } }, search: { mode: "include" } },
      { resource: { resourceType: "OperationOutcome", issue: [{ severity: "warning", code: "processing" }] }, search: { mode: "outcome" } },
    );
    fhir.firstPages.set("Appointment", page);
    const events = await createPoller({ fhir, baseUrl, redis, prefix, log }).pollOnce("ehr", cfg, receivedAt);
    expect(events.map((e) => `${e.resourceType}/${e.id}`)).toEqual(["Appointment/apt-1"]);
    expect(await redis.get(cursorKey(prefix))).toBe("2025-03-04T09:01:00.000Z");
  });

  it("stops a server that hands out the same next link forever", async () => {
    const prefix = ownedRedisPrefix(redis);
    const fhir = new PagedFhir();
    await redis.set(cursorKey(prefix), "2025-03-04T09:00:00Z");
    const loop = "https://fhir.example.org/fhir/Appointment?_page=2";
    fhir.firstPages.set("Appointment", searchset([appointment("apt-1", "1", "2025-03-04T09:01:00.000Z")], loop));
    fhir.pages.set(loop, searchset([appointment("apt-2", "1", "2025-03-04T09:02:00.000Z")], loop));
    await expect(createPoller({ fhir, baseUrl, redis, prefix, log }).pollOnce("ehr", cfg, receivedAt)).rejects.toThrow("did not terminate");
    expect(await redis.get(cursorKey(prefix))).toBe("2025-03-04T09:00:00Z");
  });

  it("finds deletes in the type's history since the cursor when the source says the server has it", async () => {
    const prefix = ownedRedisPrefix(redis);
    const fhir = new PagedFhir();
    await redis.set(cursorKey(prefix), "2025-03-04T09:00:00Z");
    fhir.firstPages.set("Appointment", searchset([appointment("apt-1", "4", "2025-03-04T09:20:00.000Z")]));
    const history = `${baseUrl}/Appointment/_history?_since=2025-03-04T08%3A58%3A00.000Z&_count=100`;
    const page2 = `${baseUrl}?_getpages=h1&_getpagesoffset=2`;
    // A HAPI-style history page: deletes carry no resource, only the request and the new version's ETag.
    fhir.pages.set(history, {
      resourceType: "Bundle",
      type: "history",
      link: [{ relation: "next", url: page2 }],
      entry: [
        { fullUrl: `${baseUrl}/Appointment/apt-1`, resource: appointment("apt-1", "4", "2025-03-04T09:20:00.000Z"), request: { method: "PUT", url: "Appointment/apt-1" }, response: { status: "200 OK", etag: 'W/"4"' } },
        { fullUrl: `${baseUrl}/Appointment/apt-7`, request: { method: "DELETE", url: "Appointment/apt-7" }, response: { status: "204 No Content", etag: 'W/"3"' } },
      ],
    });
    fhir.pages.set(page2, {
      resourceType: "Bundle",
      type: "history",
      entry: [
        { fullUrl: `${baseUrl}/Appointment/apt-8`, request: { method: "DELETE", url: "Appointment/apt-8/_history/2" }, response: { status: "204 No Content" } },
        { request: { method: "DELETE", url: "Appointment/not a valid id" }, response: { status: "204 No Content" } },
      ],
    });

    const events = await createPoller({ fhir, baseUrl, redis, prefix, log }).pollOnce("ehr", { ...cfg, historyDeletes: true }, receivedAt);

    expect(fhir.fetched).toEqual([history, page2]);
    expect(events.map((e) => `${e.interaction} ${e.id}@${e.versionId ?? "-"}`)).toEqual(["unknown apt-1@4", "delete apt-7@3", "delete apt-8@-"]);
    expect(await redis.get(cursorKey(prefix))).toBe("2025-03-04T09:20:00.000Z");
  });

  it("keeps the cursor when the history read fails, and reads no history unless configured", async () => {
    const prefix = ownedRedisPrefix(redis);
    const fhir = new PagedFhir();
    await redis.set(cursorKey(prefix), "2025-03-04T09:00:00Z");
    fhir.firstPages.set("Appointment", searchset([appointment("apt-1", "4", "2025-03-04T09:20:00.000Z")]));

    await expect(createPoller({ fhir, baseUrl, redis, prefix, log }).pollOnce("ehr", { ...cfg, historyDeletes: true }, receivedAt)).rejects.toBeInstanceOf(FhirError);
    expect(await redis.get(cursorKey(prefix))).toBe("2025-03-04T09:00:00Z");

    await createPoller({ fhir, baseUrl, redis, prefix, log }).pollOnce("ehr", cfg, receivedAt);
    expect(fhir.fetched.filter((u) => u.includes("_history"))).toHaveLength(1);
  });
});
