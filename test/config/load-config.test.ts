import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load-config.js";
import { ConfigError } from "../../src/shared/config-error.js";

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

const portalSecret = "portal-token-secret-0123456789";

/** A secret as Docker or Kubernetes mounts it: a file, often with a trailing newline. */
function secretFile(content: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "fn-secret-")), "secret");
  writeFileSync(file, content);
  return file;
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
    const config = loadConfig({ FHIR_NOTIFY_CONFIG: "config/fhir-notify.example.yaml", FHIR_PRIVATE_KEY: "-----BEGIN PRIVATE KEY-----\\n...\\n-----END PRIVATE KEY-----", MAPPING_PORTAL_TOKEN_SECRET: portalSecret });
    expect(config.fhir?.baseUrl).toBe("https://fhir.hospital.example/r4");
    expect(Object.keys(config.sources)).toEqual(["hapi-main", "medplum-prod", "legacy-emr"]);
  });

  it("lets environment variables override the file", () => {
    const file = yamlFile("http:\n  port: 9000\n");
    const config = loadConfig({ FHIR_NOTIFY_CONFIG: file, PORT: "9100", FHIR_BASE_URL: "https://fhir.example.org/r4/", LOG_LEVEL: "warn", MAPPING_PORTAL_TOKEN_SECRET: portalSecret });
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

describe("secrets come from the environment or from a *_FILE path", () => {
  const sourcesYaml = yamlFile(
    ["fhir:", "  baseUrl: https://fhir.example.org/r4", "sources:", "  hapi-main:", "    auth:", "      type: bearer", "  medplum-prod:", "    auth:", "      type: hmac", ""].join("\n"),
  );

  it("reads every secret variable from NAME_FILE, trimmed: FHIR and WhatsApp tokens, the portal secret, per-source secrets", () => {
    const config = loadConfig({
      FHIR_NOTIFY_CONFIG: sourcesYaml,
      FHIR_AUTH_TYPE: "bearer",
      FHIR_TOKEN_FILE: secretFile("fhir-token-0123456789\n"),
      WHATSAPP_PHONE_NUMBER_ID: "106540352242922",
      WHATSAPP_ACCESS_TOKEN_FILE: secretFile("  EAAG-system-user-token\n"),
      WHATSAPP_APP_SECRET: "app-secret-from-env",
      MAPPING_PORTAL_TOKEN_SECRET_FILE: secretFile(`${portalSecret}\n`),
      SOURCE_HAPI_MAIN_SECRET_FILE: secretFile("hapi-bearer-token-0123456789\n"),
      SOURCE_MEDPLUM_PROD_SECRET: "medplum-hmac-secret-0123456789",
    });
    expect(config.fhir?.auth).toEqual({ type: "bearer", token: "fhir-token-0123456789" });
    expect(config.whatsapp.accessToken).toBe("EAAG-system-user-token");
    expect(config.whatsapp.appSecret).toBe("app-secret-from-env");
    expect(config.mapping.portal.tokenSecret).toBe(portalSecret);
    expect(config.sources["hapi-main"]?.auth).toEqual({ type: "bearer", token: "hapi-bearer-token-0123456789" });
    expect(config.sources["medplum-prod"]?.auth).toEqual({ type: "hmac", header: "x-signature", secret: "medplum-hmac-secret-0123456789" });
  });

  it("names the variable and the file, never the content, when a secret file cannot be used", () => {
    const message = errorOf(() => loadConfig({ FHIR_NOTIFY_CONFIG: sourcesYaml, MAPPING_PORTAL_TOKEN_SECRET: portalSecret, SOURCE_HAPI_MAIN_SECRET: "a", SOURCE_HAPI_MAIN_SECRET_FILE: "/run/secrets/hapi", SOURCE_MEDPLUM_PROD_SECRET_FILE: "/nonexistent/medplum", SOURCE_LAB_SECRET: "lab-secret-0123456789" }));
    expect(message.split("; ")).toEqual([
      "env SOURCE_HAPI_MAIN_SECRET and SOURCE_HAPI_MAIN_SECRET_FILE are both set (use one)",
      "env SOURCE_LAB_SECRET: no source in the config has that name (sources: hapi-main, medplum-prod)",
      "env SOURCE_MEDPLUM_PROD_SECRET_FILE: cannot read /nonexistent/medplum (ENOENT)",
      `${sourcesYaml}:5: sources.hapi-main.auth.token: expected string`,
      `${sourcesYaml}:8: sources.medplum-prod.auth.secret: expected string`,
    ]);
  });

  it("stops outside sandbox mode without mapping.portal.tokenSecret, in one line; the sandbox runs without", () => {
    expect(errorOf(() => loadConfig({ FHIR_BASE_URL: "https://fhir.example.org/r4" }, tmpdir()))).toBe(
      "mapping.portal.tokenSecret is required with a FHIR server (only the sandbox runs without): set MAPPING_PORTAL_TOKEN_SECRET or MAPPING_PORTAL_TOKEN_SECRET_FILE",
    );
    expect(loadConfig({}, mkdtempSync(join(tmpdir(), "fn-empty-"))).mapping.portal.tokenSecret).toBeUndefined();
  });

  it("names the missing variable itself, and lists every problem at once", () => {
    const message = errorOf(() => loadConfig({ FHIR_BASE_URL: "https://fhir.example.org/r4", FHIR_AUTH_TYPE: "bearer", PORT: "eighty", WORKER_QUEUES: "outbox" }, tmpdir()));
    expect(message.split("; ")).toEqual([
      "env PORT: expected a number",
      "mapping.portal.tokenSecret is required with a FHIR server (only the sandbox runs without): set MAPPING_PORTAL_TOKEN_SECRET or MAPPING_PORTAL_TOKEN_SECRET_FILE",
      "config: fhir.auth.token: missing (set FHIR_TOKEN or FHIR_TOKEN_FILE)",
      'env WORKER_QUEUES (workers.queues.0): must be one of "intake", "delivery", "audit", "webhook"',
    ]);
    expect(message).not.toContain("\n");
  });
});

describe("WHATSAPP_API_BASE given with a Graph API version", () => {
  const empty = mkdtempSync(join(tmpdir(), "fn-empty-"));
  it("is used as is: the version becomes graphVersion, so no URL reads /v23.0/v23.0", () => {
    const config = loadConfig({ WHATSAPP_API_BASE: "https://graph.facebook.com/v23.0/" }, empty);
    expect([config.whatsapp.apiBase, config.whatsapp.graphVersion]).toEqual(["https://graph.facebook.com", "v23.0"]);
    expect(loadConfig({ WHATSAPP_API_BASE: "https://graph.facebook.com/v23.0", WHATSAPP_GRAPH_VERSION: "v23.0" }, empty).whatsapp.apiBase).toBe("https://graph.facebook.com");
  });

  it("is refused in one line when it names another version than WHATSAPP_GRAPH_VERSION", () => {
    expect(errorOf(() => loadConfig({ WHATSAPP_API_BASE: "https://graph.facebook.com/v22.0", WHATSAPP_GRAPH_VERSION: "v23.0" }, empty))).toBe(
      "env WHATSAPP_API_BASE (whatsapp.apiBase): names Graph API v22.0 but whatsapp.graphVersion is v23.0 (give the base without a version)",
    );
  });
});
