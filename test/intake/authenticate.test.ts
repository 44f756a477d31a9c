import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/shared/app-error.js";
import { authenticate, type AuthRequest } from "../../src/intake/authenticate.js";
import { sourceConfigSchema } from "../../src/intake/source.config.js";

const body = readFileSync(new URL("../fixtures/notifications/medplum-update-appointment.json", import.meta.url));
const token = "7f3c0d9e2b41a6c8d5e7f90a1b2c3d4e";
const secret = "q8Zr3vT0pL6wY2nB5kD9sH1x";

function request(headers: Record<string, string>, over: Partial<AuthRequest> = {}): AuthRequest {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { raw: body, header: (n) => lower[n.toLowerCase()], fromLoopback: false, ...over };
}

function rejection(fn: () => void): AppError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error("expected the request to be rejected");
}

const sign = (raw: Uint8Array, key = secret) => createHmac("sha256", key).update(raw).digest("hex");

describe("bearer", () => {
  const source = sourceConfigSchema.parse({ auth: { type: "bearer", token } });

  it("accepts the configured token, whatever the case of the scheme", () => {
    expect(() => authenticate(source, request({ Authorization: `Bearer ${token}` }))).not.toThrow();
    expect(() => authenticate(source, request({ Authorization: `bearer ${token}` }))).not.toThrow();
  });

  it("answers a missing Authorization header with login", () => {
    expect(rejection(() => authenticate(source, request({}))).code).toBe("login");
  });

  it("answers a wrong, truncated or extended token with security and does not echo it", () => {
    for (const given of ["0".repeat(token.length), token.slice(0, -1), `${token}x`, ""]) {
      const err = rejection(() => authenticate(source, request({ Authorization: `Bearer ${given}` })));
      expect(err.code).toBe("security");
      expect(err.message).not.toContain(token.slice(0, 8));
    }
  });

  it("rejects a token sent with another scheme", () => {
    expect(rejection(() => authenticate(source, request({ Authorization: `Basic ${token}` }))).code).toBe("security");
  });
});

describe("named header", () => {
  const source = sourceConfigSchema.parse({ auth: { type: "header", name: "X-Hook-Secret", value: token } });

  it("accepts the configured value in the configured header", () => {
    expect(() => authenticate(source, request({ "x-hook-secret": token }))).not.toThrow();
  });

  it("answers a missing header with login and a wrong value with security", () => {
    expect(rejection(() => authenticate(source, request({ Authorization: `Bearer ${token}` }))).code).toBe("login");
    expect(rejection(() => authenticate(source, request({ "X-Hook-Secret": token.toUpperCase() }))).code).toBe("security");
  });
});

describe("hmac (Medplum X-Signature)", () => {
  const source = sourceConfigSchema.parse({ auth: { type: "hmac", secret } });

  it("accepts lowercase hex HMAC-SHA256 of the exact raw body in x-signature by default", () => {
    expect(() => authenticate(source, request({ "X-Signature": sign(body) }))).not.toThrow();
  });

  it("rejects a signature over re-serialised JSON, as a re-parsed body would produce", () => {
    const reserialised = new TextEncoder().encode(JSON.stringify(JSON.parse(body.toString("utf8")), null, 2));
    expect(rejection(() => authenticate(source, request({ "X-Signature": sign(reserialised) }))).code).toBe("security");
  });

  it("rejects a signature made with another secret", () => {
    expect(rejection(() => authenticate(source, request({ "X-Signature": sign(body, "another-secret-of-24chars") }))).code).toBe("security");
  });

  it("rejects a truncated signature and non-hex garbage", () => {
    expect(rejection(() => authenticate(source, request({ "X-Signature": sign(body).slice(0, 63) }))).code).toBe("security");
    expect(rejection(() => authenticate(source, request({ "X-Signature": "z".repeat(64) }))).code).toBe("security");
  });

  it("answers a missing signature with login", () => {
    expect(rejection(() => authenticate(source, request({}))).code).toBe("login");
  });

  it("reads the signature from a configured header", () => {
    const custom = sourceConfigSchema.parse({ auth: { type: "hmac", header: "X-Hub-Signature-256", secret } });
    expect(() => authenticate(custom, request({ "X-Hub-Signature-256": `sha256=${sign(body)}` }))).not.toThrow();
    expect(rejection(() => authenticate(custom, request({ "X-Signature": sign(body) }))).code).toBe("login");
  });
});

describe("none", () => {
  const source = sourceConfigSchema.parse({ auth: { type: "none" } });

  it("accepts a request from loopback", () => {
    expect(() => authenticate(source, request({}, { fromLoopback: true }))).not.toThrow();
  });

  it("rejects a request from anywhere else, even for a trusted source", () => {
    expect(rejection(() => authenticate(source, request({}))).status).toBe(401);
    expect(rejection(() => authenticate({ ...source, trusted: true }, request({}))).status).toBe(401);
  });
});

describe("source config", () => {
  it("fills the documented defaults", () => {
    expect(sourceConfigSchema.parse({ auth: { type: "none" } })).toEqual({
      mode: "push",
      pollIntervalSeconds: 60,
      auth: { type: "none" },
      resourceTypes: ["Appointment", "MedicationDispense", "MedicationRequest", "DiagnosticReport"],
      unhandledTypes: "accept",
      trusted: false,
      subscription: { style: "none", payload: "id-only" },
      overlapSeconds: 120,
      recoverWith: "search",
      historyDeletes: false,
      gapGraceSeconds: 5,
    });
  });

  it("rejects unknown keys, short secrets and secrets with a colon (Medplum splits headers on ':')", () => {
    expect(sourceConfigSchema.safeParse({ auth: { type: "none" }, modee: "poll" }).success).toBe(false);
    expect(sourceConfigSchema.safeParse({ auth: { type: "bearer", token: "short" } }).success).toBe(false);
    expect(sourceConfigSchema.safeParse({ auth: { type: "bearer", token: "abcdefgh:ijklmnopqrst" } }).success).toBe(false);
  });

  it("requires a topic for backport subscriptions and refuses id-only for classic rest-hooks", () => {
    expect(sourceConfigSchema.safeParse({ auth: { type: "none" }, subscription: { style: "backport-r4" } }).success).toBe(false);
    expect(sourceConfigSchema.safeParse({ auth: { type: "none" }, subscription: { style: "r4-rest-hook", payload: "id-only" } }).success).toBe(false);
    expect(sourceConfigSchema.safeParse({ auth: { type: "none" }, subscription: { style: "r4-rest-hook", payload: "full-resource" } }).success).toBe(true);
  });
});
