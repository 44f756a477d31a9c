import { describe, expect, it } from "vitest";
import { fhirClientConfigSchema } from "../../src/fhir/fhir.config.js";

const smart = { type: "smart-backend", clientId: "fhir-notify-prod", alg: "RS384", kid: "fn-2025-01", scope: "system/Appointment.rs" };

describe("FHIR client config", () => {
  it("defaults to a 10 s timeout, 3 retries and no auth, and drops a trailing slash from the base URL", () => {
    expect(fhirClientConfigSchema.parse({ baseUrl: "https://fhir.example.org/fhir/" })).toEqual({
      baseUrl: "https://fhir.example.org/fhir",
      timeoutMs: 10_000,
      retries: 3,
      auth: { type: "none" },
    });
  });

  it("rejects unknown keys, at the top and inside auth", () => {
    expect(fhirClientConfigSchema.safeParse({ baseUrl: "https://fhir.example.org", timeout: 5 }).success).toBe(false);
    expect(fhirClientConfigSchema.safeParse({ baseUrl: "https://fhir.example.org", auth: { type: "bearer", token: "t", scope: "x" } }).success).toBe(false);
  });

  it("rejects a base URL that is not http(s) or carries a query", () => {
    expect(fhirClientConfigSchema.safeParse({ baseUrl: "ftp://fhir.example.org" }).success).toBe(false);
    expect(fhirClientConfigSchema.safeParse({ baseUrl: "https://fhir.example.org/fhir?tenant=1" }).success).toBe(false);
  });

  it("requires exactly one SMART private key, PEM or JWK", () => {
    expect(fhirClientConfigSchema.safeParse({ baseUrl: "https://fhir.example.org", auth: smart }).success).toBe(false);
    expect(fhirClientConfigSchema.safeParse({ baseUrl: "https://fhir.example.org", auth: { ...smart, privateKeyPem: "pem", privateKeyJwk: "{}" } }).success).toBe(false);
    expect(fhirClientConfigSchema.safeParse({ baseUrl: "https://fhir.example.org", auth: { ...smart, privateKeyJwk: "{}" } }).success).toBe(true);
  });

  it("accepts only the two signing algorithms SMART requires", () => {
    expect(fhirClientConfigSchema.safeParse({ baseUrl: "https://fhir.example.org", auth: { ...smart, alg: "RS256", privateKeyPem: "pem" } }).success).toBe(false);
  });

  it("accepts client credentials with and without an explicit token URL", () => {
    const auth = { type: "client-credentials", clientId: "fhir-notify", clientSecret: "cs" };
    expect(fhirClientConfigSchema.safeParse({ baseUrl: "https://fhir.example.org", auth }).success).toBe(true);
    expect(fhirClientConfigSchema.safeParse({ baseUrl: "https://fhir.example.org", auth: { ...auth, tokenUrl: "https://fhir.example.org/oauth2/token" } }).success).toBe(true);
  });
});
