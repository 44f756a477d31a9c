import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Appointment, Bundle, Subscription } from "fhir/r4";
import { describe, expect, it, onTestFinished } from "vitest";
import { checkSubscriptions } from "../../../src/intake/subscriptions.js";
import { captureLogs } from "../../support/log-capture.js";
import { startTestService } from "../../support/start-test-service.js";
import { waitFor } from "../../support/wait-for.js";
import { bookedAppointment, fhirJson } from "./support.js";

const run = promisify(execFile);
const cli = fileURLToPath(new URL("../../../bin/fhir-notify.js", import.meta.url));
const token = "ehr-token-0123456789abcdef";
const ehr = { auth: { type: "bearer", token }, resourceTypes: ["Appointment"], subscription: { style: "r4-rest-hook", payload: "full-resource" } };

/** `fhir-notify <args>` as an operator runs it, against the test service's sandbox over HTTP. */
async function fhirNotify(service: { fhirBaseUrl: string; url: string }, ...args: string[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "fn-cli-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "fhir-notify.json");
  // YAML is a superset of JSON, so the config file can be written without a YAML library.
  writeFileSync(file, JSON.stringify({ sources: { ehr } }));
  const { stdout } = await run(process.execPath, [cli, ...args], {
    env: { PATH: process.env.PATH, FHIR_BASE_URL: service.fhirBaseUrl, PUBLIC_URL: service.url, FHIR_NOTIFY_CONFIG: file, LOG_LEVEL: "silent", MAPPING_PORTAL_TOKEN_SECRET: "portal-token-secret-0123456789" },
    timeout: 20_000,
  });
  return stdout.trim();
}

describe("a Subscription the FHIR server stopped delivering to", () => {
  it("is reported as subscription-unhealthy and brought back by `fhir-notify subscriptions sync`", { timeout: 60_000 }, async () => {
    const service = await startTestService({ config: { sources: { ehr } } });
    const intake = service.queues.byName.intake;
    const processed = (a: Appointment) => waitFor(`an event for ${a.id} v${a.meta?.versionId}`, async () => (await intake.getJob(`intake_ehr_Appointment_${a.id}_v${a.meta?.versionId}`))?.finishedOn !== undefined);

    expect(await fhirNotify(service, "subscriptions", "sync")).toBe("ehr: created 1, updated 0, unchanged 0; on the server: 1 active");
    const v1 = await fhirJson<Appointment>(`${service.fhirBaseUrl}/Appointment`, { method: "POST", body: JSON.stringify(bookedAppointment(service.sandboxSeed!)) });
    await processed(v1);

    // The server gives up on us (as after repeated failed deliveries) and says so on the Subscription.
    const [sub] = ((await fhirJson<Bundle>(`${service.fhirBaseUrl}/Subscription`)).entry ?? []).map((e) => e.resource as Subscription);
    await fhirJson(`${service.fhirBaseUrl}/Subscription/${sub!.id}`, { method: "PUT", body: JSON.stringify({ ...sub, status: "error", error: "rest-hook delivery failed after 4 attempts: HTTP 503" }) });

    const logs = captureLogs("info");
    expect(await checkSubscriptions(service.fhir, logs.log, { now: new Date(), activationGraceMs: 120_000 })).toEqual([{ id: sub!.id, source: "ehr", status: "error", problem: "error" }]);
    const line = JSON.parse(logs.lines.find((l) => l.includes("subscription-unhealthy"))!) as Record<string, unknown>;
    expect(line).toMatchObject({ event: "subscription-unhealthy", subscription: `Subscription/${sub!.id}`, source: "ehr", status: "error", problem: "error" });
    expect(logs.text()).not.toContain("HTTP 503"); // the server's free text stays out of our logs
    const listed = JSON.parse(await fhirNotify(service, "subscriptions", "list")) as Array<{ status: string }>;
    expect(listed.map((s) => s.status)).toEqual(["error"]);

    // Re-activation is the client's job (reference §5.6).
    expect(await fhirNotify(service, "subscriptions", "sync")).toBe("ehr: created 0, updated 1 (1 re-activated from error/off), unchanged 0; on the server: 1 active");
    expect(await checkSubscriptions(service.fhir, captureLogs().log, { now: new Date(), activationGraceMs: 120_000 })).toEqual([]);
    const v2 = await fhirJson<Appointment>(`${service.fhirBaseUrl}/Appointment/${v1.id}`, { method: "PUT", body: JSON.stringify({ ...v1, status: "cancelled" }) });
    await processed(v2);
  });
});
