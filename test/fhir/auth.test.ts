import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { http, HttpResponse } from "msw";
import { setupServer } from "msw/node";
import { decodeJwt, decodeProtectedHeader, exportJWK, exportPKCS8, generateKeyPair, jwtVerify, type CryptoKey } from "jose";
import { FhirError } from "../../src/fhir/fhir.port.js";
import { appointment, base, buildClient, searchset } from "./fhir-test-kit.js";

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

const tokenUrl = "https://auth.example.org/oauth2/token";
const readUrl = `${base}/Appointment/apt-7781`;

interface TokenRequest {
  form: URLSearchParams;
  headers: Headers;
}

/** A token endpoint that hands out tok-1, tok-2, ... and records each request. */
function tokenEndpoint(url = tokenUrl, expiresIn: number | undefined = 300) {
  const requests: TokenRequest[] = [];
  server.use(
    http.post(url, async ({ request }) => {
      requests.push({ form: new URLSearchParams(await request.text()), headers: request.headers });
      return HttpResponse.json({
        access_token: `tok-${requests.length}`,
        token_type: "Bearer",
        ...(expiresIn !== undefined ? { expires_in: expiresIn } : {}),
        scope: "system/Appointment.rs system/Communication.cru",
      });
    }),
  );
  return requests;
}

/** The FHIR read endpoint; answers 401 to any token in `rejected` and records what it saw. */
function fhirRead(rejected: readonly string[] = []) {
  const seen: (string | null)[] = [];
  server.use(
    http.get(readUrl, ({ request }) => {
      const authorization = request.headers.get("authorization");
      seen.push(authorization);
      if (authorization !== null && rejected.includes(authorization)) {
        return HttpResponse.json({ resourceType: "OperationOutcome", issue: [{ severity: "error", code: "login" }] }, { status: 401 });
      }
      return HttpResponse.json(appointment);
    }),
  );
  return seen;
}

async function caught(promise: Promise<unknown>): Promise<FhirError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FhirError);
  return err as FhirError;
}

describe("static credentials", () => {
  it("sends a configured bearer token and does not try to refresh it on 401", async () => {
    const seen = fhirRead(["Bearer static-token-1"]);
    const { client, sleeps } = buildClient({ auth: { type: "bearer", token: "static-token-1" } });
    const err = await caught(client.read("Appointment", "apt-7781"));
    expect(err).toMatchObject({ status: 401, retryable: false });
    expect(seen).toEqual(["Bearer static-token-1"]);
    expect(sleeps).toEqual([]);
  });

  it("sends HTTP Basic credentials", async () => {
    const seen = fhirRead();
    const { client } = buildClient({ auth: { type: "basic", username: "fhir-notify", password: "s3cr3t:pass" } });
    await client.read("Appointment", "apt-7781");
    expect(seen).toEqual([`Basic ${Buffer.from("fhir-notify:s3cr3t:pass").toString("base64")}`]);
  });
});

describe("OAuth client credentials with a secret", () => {
  it("posts the client id, secret and scope as a form and uses the access token it gets", async () => {
    const tokens = tokenEndpoint();
    const seen = fhirRead();
    const { client } = buildClient({
      auth: { type: "client-credentials", tokenUrl, clientId: "fhir-notify", clientSecret: "cs-0912", scope: "system/Appointment.rs" },
    });
    await client.read("Appointment", "apt-7781");
    expect(tokens).toHaveLength(1);
    expect(tokens[0]?.headers.get("content-type")).toBe("application/x-www-form-urlencoded");
    expect(Object.fromEntries(tokens[0]?.form ?? [])).toEqual({
      grant_type: "client_credentials",
      client_id: "fhir-notify",
      client_secret: "cs-0912",
      scope: "system/Appointment.rs",
    });
    expect(seen).toEqual(["Bearer tok-1"]);
  });

  it("finds the token endpoint in .well-known/smart-configuration, asked without credentials", async () => {
    let discoveryAuthorization: string | null | undefined;
    let discoveries = 0;
    server.use(
      http.get(`${base}/.well-known/smart-configuration`, ({ request }) => {
        discoveries++;
        discoveryAuthorization = request.headers.get("authorization");
        return HttpResponse.json({ token_endpoint: tokenUrl, token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt"] });
      }),
    );
    const tokens = tokenEndpoint(tokenUrl, 60);
    fhirRead();
    const { client, clock } = buildClient({ auth: { type: "client-credentials", clientId: "fhir-notify", clientSecret: "cs-0912" } });
    await client.read("Appointment", "apt-7781");
    clock.advance(60_000);
    await client.read("Appointment", "apt-7781");
    expect(tokens).toHaveLength(2);
    expect(discoveries).toBe(1);
    expect(discoveryAuthorization).toBeNull();
  });

  it("refuses a discovered token endpoint on plain http behind an https FHIR base", async () => {
    server.use(http.get(`${base}/.well-known/smart-configuration`, () => HttpResponse.json({ token_endpoint: "http://auth.example.org/token" })));
    const { client } = buildClient({ auth: { type: "client-credentials", clientId: "fhir-notify", clientSecret: "cs-0912" } });
    const err = await caught(client.read("Appointment", "apt-7781"));
    expect(err.retryable).toBe(false);
  });

  it("fails permanently with the OAuth error code when the token endpoint rejects the client", async () => {
    let hits = 0;
    server.use(
      http.post(tokenUrl, () => {
        hits++;
        return HttpResponse.json({ error: "invalid_client", error_description: "client cs-0912 unknown" }, { status: 401 });
      }),
    );
    const { client } = buildClient({ auth: { type: "client-credentials", tokenUrl, clientId: "fhir-notify", clientSecret: "cs-0912" } });
    const err = await caught(client.read("Appointment", "apt-7781"));
    expect(err).toMatchObject({ status: 401, retryable: false, message: "FHIR token request failed: HTTP 401 (invalid_client)" });
    expect(hits).toBe(1);
  });

  it("retries a token endpoint that is temporarily unavailable", async () => {
    let hits = 0;
    server.use(
      http.post(tokenUrl, () => {
        hits++;
        return hits === 1 ? new HttpResponse(null, { status: 503 }) : HttpResponse.json({ access_token: "tok-after-503", token_type: "bearer", expires_in: 300 });
      }),
    );
    const seen = fhirRead();
    const { client, sleeps, calls } = buildClient({ auth: { type: "client-credentials", tokenUrl, clientId: "fhir-notify", clientSecret: "cs-0912" } });
    await client.read("Appointment", "apt-7781");
    expect(seen).toEqual(["Bearer tok-after-503"]);
    expect(sleeps).toHaveLength(1);
    expect(calls.map((c) => c.op)).toEqual(["token", "token", "read"]);
  });
});

describe("token cache", () => {
  const auth = { type: "client-credentials", tokenUrl, clientId: "fhir-notify", clientSecret: "cs-0912" };

  it("reuses the token until 30 s before it expires", async () => {
    const tokens = tokenEndpoint(tokenUrl, 300);
    const seen = fhirRead();
    const { client, clock } = buildClient({ auth });
    await client.read("Appointment", "apt-7781");
    clock.advance(269_000);
    await client.read("Appointment", "apt-7781");
    clock.advance(1_000);
    await client.read("Appointment", "apt-7781");
    expect(tokens).toHaveLength(2);
    expect(seen).toEqual(["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]);
  });

  it("shares one token request among concurrent callers", async () => {
    const tokens = tokenEndpoint();
    const seen = fhirRead();
    const { client } = buildClient({ auth });
    await Promise.all(Array.from({ length: 6 }, () => client.read("Appointment", "apt-7781")));
    expect(tokens).toHaveLength(1);
    expect(seen).toEqual(Array(6).fill("Bearer tok-1"));
  });

  it("on a 401 drops the cached token, fetches a new one and retries once", async () => {
    const tokens = tokenEndpoint();
    const seen = fhirRead(["Bearer tok-1"]);
    const { client } = buildClient({ auth });
    await expect(client.read("Appointment", "apt-7781")).resolves.toEqual(appointment);
    expect(tokens).toHaveLength(2);
    expect(seen).toEqual(["Bearer tok-1", "Bearer tok-2"]);
  });

  it("gives up with a permanent 401 when the fresh token is rejected too", async () => {
    const tokens = tokenEndpoint();
    const seen = fhirRead(["Bearer tok-1", "Bearer tok-2", "Bearer tok-3"]);
    const { client } = buildClient({ auth });
    const err = await caught(client.read("Appointment", "apt-7781"));
    expect(err).toMatchObject({ status: 401, retryable: false });
    expect(tokens).toHaveLength(2);
    expect(seen).toHaveLength(2);
  });

  it("refreshes once when several concurrent calls are refused the same token", async () => {
    const tokens = tokenEndpoint();
    fhirRead();
    const { client } = buildClient({ auth });
    await client.read("Appointment", "apt-7781");
    const seen = fhirRead(["Bearer tok-1"]);
    await Promise.all(Array.from({ length: 5 }, () => client.read("Appointment", "apt-7781")));
    expect(tokens).toHaveLength(2);
    expect(seen.filter((h) => h === "Bearer tok-2")).toHaveLength(5);
  });

  it("never sends the access token to another origin, not even the token endpoint's", async () => {
    const tokens = tokenEndpoint();
    fhirRead();
    server.use(http.get("https://auth.example.org/*", () => HttpResponse.json(searchset([]))));
    const { client } = buildClient({ auth });
    await client.read("Appointment", "apt-7781");
    await caught(client.fetchPage("https://auth.example.org/fhir/Appointment?page=2"));
    expect(tokens).toHaveLength(1);
    expect(tokens[0]?.headers.get("authorization")).toBeNull();
  });
});

describe("SMART Backend Services", () => {
  let rsa: { privateKey: CryptoKey; publicKey: CryptoKey };
  let ec: { privateKey: CryptoKey; publicKey: CryptoKey };
  beforeAll(async () => {
    rsa = await generateKeyPair("RS384", { extractable: true });
    ec = await generateKeyPair("ES384", { extractable: true });
  });

  it("signs an RS384 client assertion with the claims SMART requires and uses the token it buys", async () => {
    const tokens = tokenEndpoint();
    const seen = fhirRead();
    const { client, clock } = buildClient({
      auth: { type: "smart-backend", clientId: "fhir-notify-prod", privateKeyPem: await exportPKCS8(rsa.privateKey), alg: "RS384", kid: "fn-2025-01", scope: "system/Appointment.rs system/Communication.cru", tokenUrl },
    });
    await client.read("Appointment", "apt-7781");
    expect(seen).toEqual(["Bearer tok-1"]);

    const form = tokens[0]?.form;
    expect(form?.get("grant_type")).toBe("client_credentials");
    expect(form?.get("scope")).toBe("system/Appointment.rs system/Communication.cru");
    expect(form?.get("client_assertion_type")).toBe("urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    expect(form?.has("client_secret")).toBe(false);

    const assertion = form?.get("client_assertion") ?? "";
    expect(decodeProtectedHeader(assertion)).toEqual({ alg: "RS384", kid: "fn-2025-01", typ: "JWT" });
    const { payload } = await jwtVerify(assertion, rsa.publicKey, {
      algorithms: ["RS384"],
      issuer: "fhir-notify-prod",
      subject: "fhir-notify-prod",
      audience: tokenUrl,
      currentDate: clock.now(),
    });
    const now = clock.now().getTime() / 1000;
    expect(payload.exp).toBeGreaterThan(now);
    expect(payload.exp).toBeLessThanOrEqual(now + 300);
    expect(payload.jti).toEqual(expect.any(String));
  });

  it("signs ES384 assertions with a JWK private key, each with a fresh jti", async () => {
    const tokens = tokenEndpoint(tokenUrl, 300);
    fhirRead();
    const jwk = JSON.stringify(await exportJWK(ec.privateKey));
    const { client, clock } = buildClient({
      auth: { type: "smart-backend", clientId: "fhir-notify-prod", privateKeyJwk: jwk, alg: "ES384", kid: "fn-ec-1", scope: "system/Appointment.rs", tokenUrl },
    });
    await client.read("Appointment", "apt-7781");
    clock.advance(300_000);
    await client.read("Appointment", "apt-7781");
    expect(tokens).toHaveLength(2);
    const jtis = new Set<unknown>();
    for (const t of tokens) {
      const assertion = t.form.get("client_assertion") ?? "";
      expect(decodeProtectedHeader(assertion)).toMatchObject({ alg: "ES384", kid: "fn-ec-1" });
      const issuedAt = new Date((decodeJwt(assertion).iat ?? 0) * 1000);
      const { payload } = await jwtVerify(assertion, ec.publicKey, { algorithms: ["ES384"], audience: tokenUrl, currentDate: issuedAt });
      jtis.add(payload.jti);
    }
    expect(jtis.size).toBe(2);
  });

  it("addresses the assertion to the token endpoint found by discovery", async () => {
    const discovered = "https://ehr.example.org/oauth2/token";
    server.use(http.get(`${base}/.well-known/smart-configuration`, () => HttpResponse.json({ token_endpoint: discovered, token_endpoint_auth_signing_alg_values_supported: ["RS384", "ES384"] })));
    const tokens = tokenEndpoint(discovered);
    fhirRead();
    const { client } = buildClient({
      auth: { type: "smart-backend", clientId: "fhir-notify-prod", privateKeyPem: await exportPKCS8(rsa.privateKey), alg: "RS384", kid: "fn-2025-01", scope: "system/Appointment.rs" },
    });
    await client.read("Appointment", "apt-7781");
    const { payload } = await jwtVerify(tokens[0]?.form.get("client_assertion") ?? "", rsa.publicKey, { currentDate: new Date("2025-03-12T09:00:00Z") });
    expect(payload.aud).toBe(discovered);
  });

  it("fails at construction when the key cannot be read or does not fit the algorithm, without quoting it", async () => {
    const pem = await exportPKCS8(rsa.privateKey);
    const smart = { type: "smart-backend", clientId: "fhir-notify-prod", kid: "k1", scope: "system/Appointment.rs", tokenUrl };
    expect(() => buildClient({ auth: { ...smart, alg: "RS384", privateKeyPem: "-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----" } })).toThrow(
      "fhir auth: privateKeyPem: not a readable private key",
    );
    expect(() => buildClient({ auth: { ...smart, alg: "ES384", privateKeyPem: pem } })).toThrow("fhir auth: alg: ES384 does not match the private key type");
    expect(() => buildClient({ auth: { ...smart, alg: "RS384", privateKeyJwk: "{not json" } })).toThrow("fhir auth: privateKeyJwk: not a readable private key");
  });
});
