import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sentTemplates } from "../../src/delivery/whatsapp/template-compare.js";
import { loadMappingSet } from "../../src/mapping/load-rules.js";
import { toMetaTemplateRequests } from "../../src/mapping/templates.js";
import { startFakeGraphApi, type ApprovedTemplate, type FakeGraphApi } from "../fakes/graph-api.server.js";
import { mappingsDir } from "../mapping/site.js";

const root = new URL("../../", import.meta.url).pathname;
let graph: FakeGraphApi;

/** The CLI in its own process (async: the fake Graph API answers from this one). */
async function compare(env: Record<string, string> = {}) {
  const base = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/tmp",
    WHATSAPP_API_BASE: graph.url,
    WHATSAPP_PHONE_NUMBER_ID: graph.phoneNumberId,
    WHATSAPP_ACCESS_TOKEN: graph.accessToken,
    WHATSAPP_BUSINESS_ACCOUNT_ID: graph.businessAccountId,
  };
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(root, "bin/fhir-notify.js"), "templates", "compare"], { cwd: root, env: { ...base, ...env }, timeout: 60_000 });
    return { status: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { status: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  // Meta holds exactly what we would submit for the shipped templates, approved.
  const submitted = sentTemplates(loadMappingSet(mappingsDir).rules).flatMap((t) => toMetaTemplateRequests(t, "https://portal.example.org") as ApprovedTemplate[]);
  graph = await startFakeGraphApi({ templates: submitted });
});
afterAll(() => graph.stop());

describe("fhir-notify templates compare", () => {
  it("says ok for each template and language the rules send, and exits 0, when Meta has them all approved", async () => {
    const r = await compare();
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("ok appointment_reminder_v1 es\n");
    expect(r.stdout.trim().split("\n").every((l) => l.startsWith("ok "))).toBe(true);
  });

  it("exits 1 with one line on stderr when Meta paused or recategorised a template", async () => {
    const reminder = graph.templates.find((t) => t.name === "appointment_reminder_v1" && t.language === "en_US")!;
    reminder.status = "PAUSED";
    reminder.category = "MARKETING";
    try {
      const r = await compare();
      expect(r.status).toBe(1);
      expect(r.stdout).toContain("MISMATCH appointment_reminder_v1 en_US: status PAUSED, not APPROVED; category MARKETING, expected UTILITY\n");
      expect(r.stderr).toMatch(/^fhir-notify: 1 of \d+ template translations differ from what Meta has\n$/);
    } finally {
      reminder.status = "APPROVED";
      reminder.category = "UTILITY";
    }
  });

  it("names what is missing when the business account id is not set", async () => {
    const r = await compare({ WHATSAPP_BUSINESS_ACCOUNT_ID: "" });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("fhir-notify: WHATSAPP_BUSINESS_ACCOUNT_ID and WHATSAPP_ACCESS_TOKEN must be set to read Meta's templates\n");
  });

  it("says the Graph API refused, with its HTTP status and code, when the token is wrong", async () => {
    const r = await compare({ WHATSAPP_ACCESS_TOKEN: "EAAG-wrong" });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("fhir-notify: the Graph API answered HTTP 401 (code 190) to the template list\n");
  });
});
