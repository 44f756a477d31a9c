import { createPrivateKey, randomUUID, type JsonWebKey, type KeyObject } from "node:crypto";
import { SignJWT } from "jose";
import { z } from "zod";
import type { Clock } from "../shared/clock.js";
import type { FhirAuthConfig } from "./fhir.config.js";
import { exchange, parseJson, type HttpDeps } from "./exchange.js";
import { FhirError } from "./fhir.port.js";
import { isRetryableStatus } from "./retry-policy.js";

/** Supplies the Authorization header for requests to the FHIR base URL, and only for those. */
interface FhirAuth {
  /** Header value, or undefined when no auth is configured. May fetch a token (FhirError on failure). */
  authorization(): Promise<string | undefined>;
  /**
   * The FHIR server answered 401 to `header`. Drops it from the cache if it is still the cached one
   * (a concurrent caller may already have replaced it) and says whether asking again can help.
   */
  rejected(header: string): boolean;
}

interface FhirAuthDeps {
  http: HttpDeps;
  clock: Clock;
  /** FHIR base URL without trailing slash; SMART discovery lives under it. */
  baseUrl: string;
}

/**
 * Builds the auth for one FHIR server. Throws at once (at boot) when a configured private key
 * cannot be loaded or does not fit `alg`, instead of on the first token request.
 */
export function createFhirAuth(cfg: FhirAuthConfig, deps: FhirAuthDeps): FhirAuth {
  switch (cfg.type) {
    case "none":
      return { authorization: () => Promise.resolve(undefined), rejected: () => false };
    case "bearer":
      return staticHeader(`Bearer ${cfg.token}`);
    case "basic":
      return staticHeader(`Basic ${Buffer.from(`${cfg.username}:${cfg.password}`, "utf8").toString("base64")}`);
    case "client-credentials": {
      const tokenUrl = tokenEndpoint(cfg.tokenUrl, deps);
      return cachedToken(deps.clock, async () => {
        const form = new URLSearchParams({ grant_type: "client_credentials", client_id: cfg.clientId, client_secret: cfg.clientSecret });
        if (cfg.scope !== undefined) form.set("scope", cfg.scope);
        return requestToken(deps.http, await tokenUrl(), form);
      });
    }
    case "smart-backend": {
      const key = loadSigningKey(cfg);
      const tokenUrl = tokenEndpoint(cfg.tokenUrl, deps);
      return cachedToken(deps.clock, async () => {
        const aud = await tokenUrl();
        const now = Math.floor(deps.clock.now().getTime() / 1000);
        const assertion = await new SignJWT({})
          .setProtectedHeader({ alg: cfg.alg, kid: cfg.kid, typ: "JWT" })
          .setIssuer(cfg.clientId)
          .setSubject(cfg.clientId)
          .setAudience(aud)
          .setIssuedAt(now)
          // SMART caps exp at 5 minutes; a minute less leaves room for our clock running ahead.
          .setExpirationTime(now + 240)
          .setJti(randomUUID())
          .sign(key);
        const form = new URLSearchParams({
          grant_type: "client_credentials",
          scope: cfg.scope,
          client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
          client_assertion: assertion,
        });
        return requestToken(deps.http, aud, form);
      });
    }
  }
}

function staticHeader(header: string): FhirAuth {
  // Static credentials cannot be refreshed: a 401 is a configuration problem (reference §13.2).
  return { authorization: () => Promise.resolve(header), rejected: () => false };
}

interface Token {
  accessToken: string;
  expiresInS: number | undefined;
}

/**
 * Caches a token until expires_in − 30 s (reference §13.1 step 5) and shares one in-flight
 * request among concurrent callers, so a burst of jobs after expiry costs one token request.
 */
function cachedToken(clock: Clock, fetchToken: () => Promise<Token>): FhirAuth {
  let cached: { header: string; refreshAt: number } | undefined;
  let inflight: Promise<string> | undefined;
  const refresh = (): Promise<string> => {
    inflight ??= fetchToken()
      .then((t) => {
        const header = `Bearer ${t.accessToken}`;
        cached = { header, refreshAt: clock.now().getTime() + cacheLifetimeMs(t.expiresInS) };
        return header;
      })
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  };
  return {
    authorization: () => (cached !== undefined && clock.now().getTime() < cached.refreshAt ? Promise.resolve(cached.header) : refresh()),
    rejected: (header) => {
      if (cached?.header === header) cached = undefined;
      return true;
    },
  };
}

function cacheLifetimeMs(expiresInS: number | undefined): number {
  // SMART recommends 300 s when the server leaves expires_in out. Very short tokens keep half
  // their life instead of going negative under the 30 s margin.
  const seconds = expiresInS ?? 300;
  return (seconds > 60 ? seconds - 30 : seconds / 2) * 1000;
}

const tokenResponseSchema = z.looseObject({
  access_token: z.string().min(1),
  token_type: z.string().refine((t) => t.toLowerCase() === "bearer"),
  expires_in: z.number().positive().optional(),
  scope: z.string().optional(),
});

// OAuth error codes (RFC 6749 §5.2) are a fixed vocabulary; error_description is free text and dropped.
const oauthErrorSchema = z.looseObject({ error: z.string().regex(/^[a-z_]{1,64}$/) });

async function requestToken(http: HttpDeps, tokenUrl: string, form: URLSearchParams): Promise<Token> {
  const raw = await exchange(http, "token", new URL(tokenUrl), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: form.toString(),
  });
  const body = parseJson(raw.text);
  if (raw.status !== 200) {
    const oauth = oauthErrorSchema.safeParse(body);
    const code = oauth.success ? ` (${oauth.data.error})` : "";
    throw new FhirError(`FHIR token request failed: HTTP ${raw.status}${code}`, raw.status, isRetryableStatus(raw.status));
  }
  const token = tokenResponseSchema.safeParse(body);
  if (!token.success) throw new FhirError("FHIR token response is not a bearer token response", raw.status, false);
  return { accessToken: token.data.access_token, expiresInS: token.data.expires_in };
}

const smartConfigurationSchema = z.looseObject({ token_endpoint: z.url({ protocol: /^https?$/ }) });

/**
 * The configured token URL, or the one from [base]/.well-known/smart-configuration (SMART App
 * Launch 2.x discovery). A successful discovery is kept for the life of the process; a failed one
 * is tried again on the next call.
 */
function tokenEndpoint(configured: string | undefined, deps: FhirAuthDeps): () => Promise<string> {
  if (configured !== undefined) return () => Promise.resolve(configured);
  let discovered: Promise<string> | undefined;
  return () => {
    discovered ??= discover(deps).catch((err: unknown) => {
      discovered = undefined;
      throw err;
    });
    return discovered;
  };
}

async function discover(deps: FhirAuthDeps): Promise<string> {
  const raw = await exchange(deps.http, "discovery", new URL(`${deps.baseUrl}/.well-known/smart-configuration`), {
    method: "GET",
    headers: { accept: "application/json" },
  });
  if (raw.status !== 200) {
    throw new FhirError(`SMART discovery failed: HTTP ${raw.status}`, raw.status, isRetryableStatus(raw.status));
  }
  const parsed = smartConfigurationSchema.safeParse(parseJson(raw.text));
  if (!parsed.success) throw new FhirError("SMART configuration has no usable token_endpoint", raw.status, false);
  // Client secrets and assertions go to this URL: never downgrade to plain http behind an https base.
  if (new URL(parsed.data.token_endpoint).protocol === "http:" && new URL(deps.baseUrl).protocol === "https:") {
    throw new FhirError("SMART configuration token_endpoint is not https", raw.status, false);
  }
  return parsed.data.token_endpoint;
}

function loadSigningKey(cfg: Extract<FhirAuthConfig, { type: "smart-backend" }>): KeyObject {
  let key: KeyObject;
  try {
    key =
      cfg.privateKeyJwk !== undefined
        ? createPrivateKey({ key: JSON.parse(cfg.privateKeyJwk) as JsonWebKey, format: "jwk" })
        : createPrivateKey({ key: cfg.privateKeyPem ?? "", format: "pem" });
  } catch {
    // The parser's message could quote key material; say only which setting is wrong.
    throw new Error(`fhir auth: ${cfg.privateKeyJwk !== undefined ? "privateKeyJwk" : "privateKeyPem"}: not a readable private key`);
  }
  const fits =
    cfg.alg === "RS384" ? key.asymmetricKeyType === "rsa" : key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "secp384r1";
  if (!fits) throw new Error(`fhir auth: alg: ${cfg.alg} does not match the private key type`);
  return key;
}
