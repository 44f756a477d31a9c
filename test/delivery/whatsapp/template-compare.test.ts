import { http, HttpResponse } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fetchMetaTemplates, TemplateCatalogError, type MetaTemplate } from "../../../src/delivery/whatsapp/template-catalog.js";
import { compareTemplates, sentTemplates } from "../../../src/delivery/whatsapp/template-compare.js";
import { toMetaTemplateRequests } from "../../../src/mapping/templates.js";
import { loadMappingSet } from "../../../src/mapping/load-rules.js";
import { mappingsDir } from "../../mapping/site.js";

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

const cfg = { apiBase: "https://graph.facebook.com", graphVersion: "v23.0", businessAccountId: "102290129340398", accessToken: "EAAG-test", timeoutMs: 2_000 };
const listUrl = "https://graph.facebook.com/v23.0/102290129340398/message_templates";
const shipped = () => sentTemplates(loadMappingSet(mappingsDir).rules);
/** What Meta lists once it approved exactly what we submit for the shipped templates. */
const approved = (): MetaTemplate[] => shipped().flatMap((t) => toMetaTemplateRequests(t, "https://portal.example.org") as MetaTemplate[]).map((t) => ({ ...t, status: "APPROVED" }));
const both = new Set(["en_US", "es"]);

describe("reading Meta's template list", () => {
  it("follows paging.next to the last page with the token, and keeps what it needs", async () => {
    const all = approved();
    const seen: string[] = [];
    server.use(
      http.get(listUrl, ({ request }) => {
        seen.push(`${request.headers.get("authorization")} ${new URL(request.url).searchParams.get("after") ?? "-"}`);
        const after = Number(new URL(request.url).searchParams.get("after") ?? 0);
        const next = after + 4 < all.length ? { next: `${listUrl}?limit=4&after=${after + 4}` } : {};
        return HttpResponse.json({ data: all.slice(after, after + 4).map((t) => ({ ...t, id: "1", quality_score: { score: "GREEN" } })), paging: { cursors: { after: "x" }, ...next } });
      }),
    );
    const got = await fetchMetaTemplates(cfg);
    expect(got.map((t) => `${t.name}|${t.language}`)).toEqual(all.map((t) => `${t.name}|${t.language}`));
    expect(seen[0]).toBe("Bearer EAAG-test -");
    expect(seen.length).toBe(Math.ceil(all.length / 4));
  });

  it("does not send the token to a next page on another host", async () => {
    server.use(http.get(listUrl, () => HttpResponse.json({ data: [], paging: { next: "https://elsewhere.example/page2" } })));
    await expect(fetchMetaTemplates(cfg)).rejects.toThrow(/another host/);
  });

  it("says what Meta answered when it refuses, without its message text", async () => {
    server.use(http.get(listUrl, () => HttpResponse.json({ error: { message: "(#190) Invalid OAuth access token", code: 190 } }, { status: 401 })));
    await expect(fetchMetaTemplates(cfg)).rejects.toThrow(new TemplateCatalogError("the Graph API answered HTTP 401 (code 190) to the template list"));
  });
});

describe("comparing local templates with Meta's", () => {
  it("finds nothing to report when Meta holds exactly the shipped templates, approved", () => {
    const results = compareTemplates(shipped(), approved(), both);
    expect(results.length).toBeGreaterThan(8);
    expect(results.filter((r) => r.problems.length > 0)).toEqual([]);
  });

  it("names each difference: missing translation, status, category, variable count and buttons", () => {
    const meta = approved()
      .filter((t) => !(t.name === "pharmacy_pickup_ready_v1" && t.language === "es"))
      .map((t) => {
        if (t.name === "appointment_confirmation_v1" && t.language === "en_US") return { ...t, status: "PAUSED", category: "MARKETING" };
        if (t.name === "appointment_reminder_v1" && t.language === "es") {
          return { ...t, components: t.components.map((c) => (c.type === "BODY" ? { ...c, text: "Hola {{1}}, cita el {{2}}." } : c.type === "BUTTONS" ? { ...c, buttons: [{ type: "QUICK_REPLY" }] } : c)) };
        }
        return t;
      });
    const problems = Object.fromEntries(compareTemplates(shipped(), meta, both).filter((r) => r.problems.length > 0).map((r) => [`${r.name} ${r.language}`, r.problems]));
    expect(problems).toEqual({
      "appointment_confirmation_v1 en_US": ["status PAUSED, not APPROVED", "category MARKETING, expected UTILITY"],
      "appointment_reminder_v1 es": ["body has 2 variables at Meta, 4 here", "buttons [QUICK_REPLY] at Meta, [QUICK_REPLY, QUICK_REPLY] here"],
      "pharmacy_pickup_ready_v1 es": ["not at Meta (submit it, or fix the name or language code)"],
    });
  });

  it("skips translations the site does not send", () => {
    const meta = approved().filter((t) => t.language !== "es");
    expect(compareTemplates(shipped(), meta, new Set(["en_US"])).filter((r) => r.problems.length > 0)).toEqual([]);
  });
});
