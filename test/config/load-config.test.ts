import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/load-config.js";

function yamlFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "fn-config-"));
  const file = join(dir, "fhir-notify.yaml");
  writeFileSync(file, text);
  return file;
}

function errorOf(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("configuration is read once, validated, and fails in one line naming where", () => {
  it("runs on embedded defaults with no file and no environment", () => {
    const config = loadConfig({}, mkdtempSync(join(tmpdir(), "fn-empty-")));
    expect(config.http.port).toBe(8080);
    expect(config.fhir).toBeUndefined();
    expect(config.redis.url).toBeUndefined();
    expect(config.whatsapp.phoneNumberId).toBeUndefined();
    expect(config.delivery.quietHours).toMatchObject({ enabled: true, start: "08:00", end: "21:00" });
  });

  it("accepts the shipped commented example", () => {
    // The example keeps the SMART key out of the file, as it should: it comes from the environment.
    const config = loadConfig({ FHIR_NOTIFY_CONFIG: "config/fhir-notify.example.yaml", FHIR_PRIVATE_KEY: "-----BEGIN PRIVATE KEY-----\\n...\\n-----END PRIVATE KEY-----" });
    expect(config.fhir?.baseUrl).toBe("https://fhir.hospital.example/r4");
    expect(Object.keys(config.sources)).toEqual(["hapi-main", "medplum-prod", "legacy-emr"]);
  });

  it("lets environment variables override the file", () => {
    const file = yamlFile("http:\n  port: 9000\n");
    const config = loadConfig({ FHIR_NOTIFY_CONFIG: file, PORT: "9100", FHIR_BASE_URL: "https://fhir.example.org/r4/", LOG_LEVEL: "warn" });
    expect(config.http.port).toBe(9100);
    expect(config.fhir?.baseUrl).toBe("https://fhir.example.org/r4");
    expect(config.log.level).toBe("warn");
  });

  it("reads the queues a worker serves from WORKER_QUEUES, all of them by default", () => {
    const empty = mkdtempSync(join(tmpdir(), "fn-empty-"));
    expect(loadConfig({}, empty).workers.queues).toEqual(["intake", "delivery", "audit", "webhook"]);
    expect(loadConfig({ WORKER_QUEUES: "delivery, webhook" }, empty).workers.queues).toEqual(["delivery", "webhook"]);
    expect(errorOf(() => loadConfig({ WORKER_QUEUES: "delivery,outbox" }, empty))).toBe('env WORKER_QUEUES (workers.queues.1): must be one of "intake", "delivery", "audit", "webhook"');
    expect(errorOf(() => loadConfig({ WORKER_QUEUES: " , " }, empty))).toBe("env WORKER_QUEUES (workers.queues): must be at least 1");
  });

  it("names the environment variable, not its value, when one is wrong", () => {
    expect(errorOf(() => loadConfig({ PORT: "eighty" }, tmpdir()))).toBe("env PORT: expected a number");
    const message = errorOf(() => loadConfig({ REDIS_URL: "http://secret-host:6379" }, tmpdir()));
    expect(message).toMatch(/^env REDIS_URL \(redis\.url\): /);
    expect(message).not.toContain("secret-host");
  });

  it("names file, line and field for a bad value or an unknown key in the YAML file", () => {
    const file = yamlFile("http:\n  port: 8080\ndelivery:\n  quietHours:\n    start: \"8am\"\n");
    expect(errorOf(() => loadConfig({ FHIR_NOTIFY_CONFIG: file }))).toBe(`${file}:5: delivery.quietHours.start: must be HH:MM (24-hour)`);
    const typo = yamlFile("htp:\n  port: 8080\n");
    expect(errorOf(() => loadConfig({ FHIR_NOTIFY_CONFIG: typo }))).toContain("unknown key 'htp'");
  });

  it("reports a missing explicit file and invalid YAML", () => {
    expect(errorOf(() => loadConfig({ FHIR_NOTIFY_CONFIG: "/nonexistent/fhir-notify.yaml" }))).toBe("/nonexistent/fhir-notify.yaml: file not found");
    const broken = yamlFile("http:\n  port: [8080\n");
    expect(errorOf(() => loadConfig({ FHIR_NOTIFY_CONFIG: broken }))).toMatch(/not valid YAML/);
  });
});
