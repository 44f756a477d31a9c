import { spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadFixture } from "../fixtures/fhir/load-fixture.js";

const root = new URL("../../", import.meta.url).pathname;

function cli(args: readonly string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [join(root, "bin/fhir-notify.js"), ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A scratch copy of the shipped mappings/, for a test to break one file of. */
function copyOfShippedMappings(): string {
  const dir = mkdtempSync(join(tmpdir(), "fn-mappings-"));
  cpSync(join(root, "mappings"), dir, { recursive: true });
  return dir;
}

function edit(file: string, change: (text: string) => string): void {
  writeFileSync(file, change(readFileSync(file, "utf8")));
}

describe("the fhir-notify CLI", () => {
  it("answers unknown input with one line and a non-zero exit", () => {
    const r = cli(["frobnicate", "now"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("fhir-notify: unknown command 'frobnicate now'; run 'fhir-notify help'\n");
  });

  it("names the environment variable when the configuration is wrong", () => {
    const r = cli(["mappings", "check"], { PORT: "eighty" });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("fhir-notify: env PORT: expected a number\n");
  });

  it("checks the shipped mappings", () => {
    const r = cli(["mappings", "check"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^ok: \d+ rules valid \(rules hash [0-9a-f]{12}\)\n$/);
  });

  it("checks the shipped mappings against a site's own portal, as the example config sets it", () => {
    const r = cli(["mappings", "check"], { FHIR_NOTIFY_CONFIG: "config/fhir-notify.example.yaml", FHIR_PRIVATE_KEY: "-----BEGIN PRIVATE KEY-----", MAPPING_PORTAL_TOKEN_SECRET: "portal-token-secret-0123456789" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    // The same config without the portal's token secret would not boot, so the check says so first.
    const unkeyed = cli(["mappings", "check"], { FHIR_NOTIFY_CONFIG: "config/fhir-notify.example.yaml", FHIR_PRIVATE_KEY: "-----BEGIN PRIVATE KEY-----" });
    expect(unkeyed.status).toBe(1);
    expect(unkeyed.stderr).toBe("fhir-notify: mapping.portal.tokenSecret is required with a FHIR server (only the sandbox runs without): set MAPPING_PORTAL_TOKEN_SECRET or MAPPING_PORTAL_TOKEN_SECRET_FILE\n");
  });

  it("runs the boot-time checks serve runs: a URL button outside portal.url fails the check, not the deploy", () => {
    const dir = copyOfShippedMappings();
    const template = join(dir, "templates", "visit_followup_portal_v1.yaml");
    edit(template, (text) => text.replaceAll('path: "/s/{{1}}"', 'url: "https://elsewhere.example/s/{{1}}"'));
    const r = cli(["mappings", "check", dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^fhir-notify: .*visit_followup_portal_v1\.yaml:\d+: languages\.en_US\.buttons\[0\]\.url: must start with the configured mapping\.portal\.url/);
    expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
  });

  it("lints a template's fixed text: a clinical word in a button fails the check with its file, line and part", () => {
    const dir = copyOfShippedMappings();
    const template = join(dir, "templates", "appointment_reminder_v1.yaml");
    edit(template, (text) => text.replace("text: Cambiar horario", "text: Cambiar cita de VIH"));
    const r = cli(["mappings", "check", dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `fhir-notify: ${template}:20: languages.es.buttons[1].text: fixed text names 'VIH', a clinical term (src/mapping/clinical-terms.ts): every patient it goes to would read it\n`,
    );
  });

  it("lints configured labels: a clinical word in a Location's label fails the check, naming the key", () => {
    const dir = mkdtempSync(join(tmpdir(), "fn-config-"));
    const config = join(dir, "fhir-notify.yaml");
    writeFileSync(config, 'mapping:\n  locations:\n    Location/loc-7: { label: "Riverside Oncology Wing", timeZone: America/Chicago }\n');
    const r = cli(["mappings", "check"], { FHIR_NOTIFY_CONFIG: config });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      "fhir-notify: mapping.locations.Location/loc-7.label: the configured label names 'oncology', a clinical term (src/mapping/clinical-terms.ts): every message that names this place would show it\n",
    );
  });

  it("rejects a rule that tries to put a clinical field in a message, naming file and line", () => {
    const dir = copyOfShippedMappings();
    writeFileSync(
      join(dir, "appointment-booked.yaml"),
      [
        "id: appointment-booked",
        "resourceType: Appointment",
        "trigger:",
        "  when:",
        "    - status = 'booked'",
        "template: appointment_confirmation_v1",
        "category: notification",
        "send: now",
        "distinctBy: [id, start]",
        "slots: [patientFirstName, reasonCode, appointmentDate, appointmentTime]",
        "",
      ].join("\n"),
    );
    const r = cli(["mappings", "check", dir]);
    expect(r.status).toBe(1);
    expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toMatch(/appointment-booked\.yaml:10: slots\[1\]: .*reasonCode/);
  });

  it("previews a Bundle: which rules fire and the exact Cloud API request, with no FHIR server", () => {
    const dir = mkdtempSync(join(tmpdir(), "fn-preview-"));
    mkdirSync(dir, { recursive: true });
    const appointment = loadFixture("Appointment", "booked-en-chicago");
    const start = new Date(Date.now() + 3 * 24 * 3600_000);
    start.setUTCHours(15, 0, 0, 0);
    appointment.start = start.toISOString();
    appointment.end = new Date(start.getTime() + 30 * 60_000).toISOString();
    const bundle = {
      resourceType: "Bundle",
      type: "collection",
      entry: [
        appointment,
        loadFixture("Patient", "jordan-rivera-en"),
        loadFixture("Location", "loc-riverside"),
        loadFixture("Consent", "whatsapp-permit-pat-1001"),
      ].map((resource) => ({ resource })),
    };
    const file = join(dir, "booking.json");
    writeFileSync(file, JSON.stringify(bundle));
    const config = join(dir, "fhir-notify.yaml");
    writeFileSync(config, 'mapping:\n  locations:\n    Location/loc-riverside: { label: "Riverside Clinic", timeZone: America/Chicago }\n');
    const r = cli(["preview", file], { FHIR_NOTIFY_CONFIG: config });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const out = JSON.stringify(JSON.parse(r.stdout));
    expect(out).toContain("appointment_confirmation_v1");
    expect(out).toContain("Riverside Clinic");
    for (const secret of ["Oncology", "biopsy", "tamoxifen", "mammography", "neoplasm"]) expect(out).not.toContain(secret);
  });

  it("says what is wrong with a preview file", () => {
    const dir = mkdtempSync(join(tmpdir(), "fn-preview-"));
    const file = join(dir, "broken.json");
    writeFileSync(file, "{ not json");
    expect(cli(["preview", file]).stderr).toBe(`fhir-notify: ${file}: not valid JSON\n`);
    expect(cli(["preview", join(dir, "missing.json")]).stderr).toBe(`fhir-notify: ${join(dir, "missing.json")}: cannot read file\n`);
  });

  it("answers --help for each command with its usage, exit 0", { timeout: 30_000 }, () => {
    for (const command of [["serve"], ["mappings", "check"], ["dlq", "replay"]]) {
      const help = cli([...command, "--help"]);
      expect(help.status, command.join(" ")).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^usage: fhir-notify ${command.join(" ")}`));
    }
  });

  it("refuses an unknown option, a bad --role and extra arguments with one line and exit 1", { timeout: 30_000 }, () => {
    const unknown = cli(["dlq", "list", "--all"]);
    expect([unknown.status, unknown.stderr]).toEqual([1, "fhir-notify: dlq list: unknown option '--all'; run 'fhir-notify dlq list --help'\n"]);
    const role = cli(["serve", "--role", "admin"]);
    expect([role.status, role.stderr]).toEqual([1, "fhir-notify: serve: --role must be api, worker or all\n"]);
    const extra = cli(["mappings", "check", "mappings", "more"]);
    expect([extra.status, extra.stderr]).toEqual([1, "fhir-notify: mappings check: expected mappings check [dir]; run 'fhir-notify mappings check --help'\n"]);
  });

  it("exits 1 naming the id when dlq replay is given one that is not in the dead-letter queue", () => {
    const dir = mkdtempSync(join(tmpdir(), "fn-dlq-"));
    const config = join(dir, "fhir-notify.yaml");
    writeFileSync(config, `redis:\n  url: redis://127.0.0.1:6379\n  prefix: t-cli-${process.pid}-${Date.now()}\n`);
    const r = cli(["dlq", "replay", "dlq_delivery_dlv_nope"], { FHIR_NOTIFY_CONFIG: config });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("fhir-notify: dlq replay: no dead-lettered job with id 'dlq_delivery_dlv_nope'; see 'fhir-notify dlq list'\n");
  });
});
