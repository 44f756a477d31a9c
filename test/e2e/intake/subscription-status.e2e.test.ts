import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Subscription } from "fhir/r4";
import { describe, expect, it, onTestFinished } from "vitest";
import { desiredSubscriptions } from "../../../src/intake/subscriptions.js";
import { sourceConfigSchema } from "../../../src/intake/source.config.js";
import { startFakeSubscriptionServer } from "../../fakes/subscription-server.js";
import { startTestService } from "../../support/start-test-service.js";
import { scrape, total } from "../../ops/prometheus-text.js";

const cli = fileURLToPath(new URL("../../../bin/fhir-notify.js", import.meta.url));
const token = "ehr-token-0123456789abcdef";
const ehr = { auth: { type: "bearer", token }, resourceTypes: ["Appointment"], subscription: { style: "r4-rest-hook", payload: "full-resource" } };

/** `fhir-notify <args>` as an operator runs it, with `sources` in the config file. */
function fhirNotify(fhirBaseUrl: string, sources: Record<string, unknown>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), "fn-cli-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "fhir-notify.json");
  writeFileSync(file, JSON.stringify({ sources }));
  return new Promise((done) => {
    execFile(
      process.execPath,
      [cli, ...args],
      { env: { PATH: process.env.PATH, FHIR_BASE_URL: fhirBaseUrl, PUBLIC_URL: "https://notify.example.org", FHIR_NOTIFY_CONFIG: file, LOG_LEVEL: "silent", MAPPING_PORTAL_TOKEN_SECRET: "portal-token-secret-0123456789" }, timeout: 20_000 },
      (err, stdout, stderr) => done({ code: err === null ? 0 : typeof err.code === "number" ? err.code : 1, stdout: stdout.trim(), stderr: stderr.trim() }),
    );
  });
}

describe("subscriptions sync creates Subscriptions in the status each server needs", () => {
  it("creates them active on Medplum, which delivers only active ones and never activates, and reads them back", async () => {
    const medplum = await startFakeSubscriptionServer("medplum");
    const run = await fhirNotify(medplum.baseUrl, { ehr }, "subscriptions", "sync");
    expect(run).toMatchObject({ code: 0, stdout: "ehr: created 1, updated 0, unchanged 0; on the server: 1 active" });
    expect(medplum.written).toEqual(["active"]);
    expect(medplum.stored().map((s) => s.status)).toEqual(["active"]);
  });

  it("creates them requested on HAPI, which activates them, and reports them active once read back", async () => {
    const hapi = await startFakeSubscriptionServer("hapi");
    const run = await fhirNotify(hapi.baseUrl, { ehr }, "subscriptions", "sync");
    expect(run).toMatchObject({ code: 0, stdout: "ehr: created 1, updated 0, unchanged 0; on the server: 1 active" });
    expect(hapi.written).toEqual(["requested"]);
  });

  it("fails, naming the fix, when a Subscription is still requested after the sync", async () => {
    const medplum = await startFakeSubscriptionServer("medplum");
    const forced = { ...ehr, subscription: { ...ehr.subscription, initialStatus: "requested" } };
    const run = await fhirNotify(medplum.baseUrl, { ehr: forced }, "subscriptions", "sync");
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("ehr: created 1, updated 0, unchanged 0; on the server: 1 requested");
    expect(run.stderr).toMatch(/^fhir-notify: ehr: Subscription\/[\w-]+ is still requested: the FHIR server has not activated it and will deliver nothing \(a Medplum server needs sources\.ehr\.subscription\.initialStatus: active\)$/);
  });
});

describe("a Subscription the server never activated", () => {
  it("is unhealthy: a log event, a metric, a /readyz reason and a problem in `subscriptions list`; sync activates it", async () => {
    const medplum = await startFakeSubscriptionServer("medplum");
    // Left by a build that created everything `requested`: ten minutes later it has delivered nothing.
    const [stuck] = desiredSubscriptions("ehr", sourceConfigSchema.parse(ehr), "https://notify.example.org/hooks/fhir/ehr", `Authorization: Bearer ${token}`, "requested");
    const seeded = medplum.seed(stuck!, new Date(Date.now() - 10 * 60_000).toISOString());

    const service = await startTestService({ role: "api", config: { fhir: { baseUrl: medplum.baseUrl }, sources: { ehr } } });
    const ready = (await (await fetch(`${service.url}/readyz`)).json()) as { status: string; reasons?: string[] };
    expect(ready.status).toBe("degraded");
    expect(ready.reasons).toContainEqual(expect.stringContaining("a Subscription of source ehr is still requested: the FHIR server has not activated it"));
    const { samples } = await scrape(service.url);
    expect(total(samples, "fhir_notify_subscriptions_unhealthy", { source: "ehr" })).toBe(1);
    expect(total(samples, "fhir_notify_subscriptions", { source: "ehr", status: "requested" })).toBe(1);
    const event = service.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === "subscription-unhealthy");
    expect(event).toMatchObject({ subscription: `Subscription/${seeded.id}`, source: "ehr", status: "requested", problem: "not-activated" });

    const listed = JSON.parse((await fhirNotify(medplum.baseUrl, { ehr }, "subscriptions", "list")).stdout) as Array<Partial<Subscription> & { problem?: string }>;
    expect(listed).toMatchObject([{ id: seeded.id, source: "ehr", status: "requested", problem: "not-activated" }]);

    const sync = await fhirNotify(medplum.baseUrl, { ehr }, "subscriptions", "sync");
    expect(sync).toMatchObject({ code: 0, stdout: "ehr: created 0, updated 1 (1 re-activated from error/off), unchanged 0; on the server: 1 active" });
    const relisted = JSON.parse((await fhirNotify(medplum.baseUrl, { ehr }, "subscriptions", "list")).stdout) as Array<{ status: string; problem?: string }>;
    expect(relisted).toEqual([expect.not.objectContaining({ problem: expect.anything() })]);
    expect(relisted[0]?.status).toBe("active");
  });
});
