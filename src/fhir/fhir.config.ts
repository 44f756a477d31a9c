import { z } from "zod";

/*
 * Config slice for the outbound FHIR client. src/config maps environment variables onto this
 * shape and parses it once at boot (style rule 6). Env var names are given next to each field.
 * Secrets (token, password, clientSecret, private key) come from the environment / secret store,
 * never from config/*.yaml.
 */

const nonEmpty = z.string().min(1);

/** An absolute http(s) URL. Plain http is allowed for local development servers. */
const httpUrl = z.url({ protocol: /^https?$/ });

const noAuth = z.strictObject({
  type: z.literal("none"), // FHIR_AUTH_TYPE=none
});

const bearerAuth = z.strictObject({
  type: z.literal("bearer"), // FHIR_AUTH_TYPE=bearer
  token: nonEmpty, // FHIR_TOKEN; static, never refreshed (reference §13.2)
});

const basicAuth = z.strictObject({
  type: z.literal("basic"), // FHIR_AUTH_TYPE=basic
  username: nonEmpty, // FHIR_USERNAME
  password: nonEmpty, // FHIR_PASSWORD
});

const clientCredentialsAuth = z.strictObject({
  type: z.literal("client-credentials"), // FHIR_AUTH_TYPE=client-credentials
  tokenUrl: httpUrl.optional(), // FHIR_TOKEN_URL; default: token_endpoint from [base]/.well-known/smart-configuration
  clientId: nonEmpty, // FHIR_CLIENT_ID
  clientSecret: nonEmpty, // FHIR_CLIENT_SECRET
  scope: nonEmpty.optional(), // FHIR_SCOPE
});

const smartBackendAuth = z
  .strictObject({
    type: z.literal("smart-backend"), // FHIR_AUTH_TYPE=smart-backend
    clientId: nonEmpty, // FHIR_CLIENT_ID
    privateKeyPem: nonEmpty.optional(), // FHIR_PRIVATE_KEY (PKCS#8 PEM)
    privateKeyJwk: nonEmpty.optional(), // FHIR_PRIVATE_KEY_JWK (a private JWK as a JSON string)
    alg: z.enum(["RS384", "ES384"]), // FHIR_SIGNING_ALG; SMART requires clients to support both
    kid: nonEmpty, // FHIR_KEY_ID; must match the kid in the JWK Set registered with the server
    scope: nonEmpty, // FHIR_SCOPE, e.g. "system/Appointment.rs system/Communication.cru"
    tokenUrl: httpUrl.optional(), // FHIR_TOKEN_URL; default: discovered from .well-known/smart-configuration
  })
  .refine((a) => (a.privateKeyPem === undefined) !== (a.privateKeyJwk === undefined), {
    message: "set exactly one of privateKeyPem or privateKeyJwk",
    path: ["privateKeyPem"],
  });

export const fhirClientConfigSchema = z.strictObject({
  // FHIR_BASE_URL. A trailing slash is dropped so paths can be appended with "/".
  baseUrl: httpUrl
    .refine((u) => !u.includes("?") && !u.includes("#"), { message: "must not contain a query or fragment" })
    .transform((u) => u.replace(/\/+$/, "")),
  timeoutMs: z.number().int().positive().max(120_000).default(10_000), // FHIR_TIMEOUT_MS, per HTTP attempt
  retries: z.number().int().min(0).max(10).default(3), // FHIR_RETRIES, extra attempts after the first
  auth: z
    .discriminatedUnion("type", [noAuth, bearerAuth, basicAuth, clientCredentialsAuth, smartBackendAuth])
    .default({ type: "none" }),
});

export type FhirClientConfig = z.output<typeof fhirClientConfigSchema>;
export type FhirAuthConfig = FhirClientConfig["auth"];
