/**
 * Environment variables and the config path each one sets. The README's environment table is
 * generated from this list (npm run docs:env), so the two cannot drift.
 */
export interface EnvVar {
  name: string;
  path: readonly string[];
  type: "string" | "number";
  description: string;
  secret?: boolean;
}

export const envVars: readonly EnvVar[] = [
  { name: "PORT", path: ["http", "port"], type: "number", description: "HTTP port (default 8080)" },
  { name: "HOST", path: ["http", "host"], type: "string", description: "Listen address (default 127.0.0.1; set 0.0.0.0 in containers)" },
  { name: "PUBLIC_URL", path: ["http", "publicUrl"], type: "string", description: "URL the FHIR server and Meta use to reach this service" },
  { name: "REDIS_URL", path: ["redis", "url"], type: "string", description: "Redis URL; unset: 127.0.0.1:6379 if it answers, else an embedded redis-server", secret: true },
  { name: "FHIR_BASE_URL", path: ["fhir", "baseUrl"], type: "string", description: "FHIR R4 base URL; unset: the embedded sandbox server" },
  { name: "FHIR_AUTH_TYPE", path: ["fhir", "auth", "type"], type: "string", description: "none | bearer | basic | client-credentials | smart-backend" },
  { name: "FHIR_TOKEN", path: ["fhir", "auth", "token"], type: "string", description: "Static bearer token (auth type bearer)", secret: true },
  { name: "FHIR_USERNAME", path: ["fhir", "auth", "username"], type: "string", description: "HTTP Basic user (auth type basic)" },
  { name: "FHIR_PASSWORD", path: ["fhir", "auth", "password"], type: "string", description: "HTTP Basic password (auth type basic)", secret: true },
  { name: "FHIR_CLIENT_ID", path: ["fhir", "auth", "clientId"], type: "string", description: "OAuth / SMART client id" },
  { name: "FHIR_CLIENT_SECRET", path: ["fhir", "auth", "clientSecret"], type: "string", description: "OAuth client secret (client-credentials)", secret: true },
  { name: "FHIR_PRIVATE_KEY", path: ["fhir", "auth", "privateKeyPem"], type: "string", description: "PEM private key for SMART Backend Services", secret: true },
  { name: "FHIR_KEY_ID", path: ["fhir", "auth", "kid"], type: "string", description: "kid of the SMART signing key" },
  { name: "FHIR_SIGNING_ALG", path: ["fhir", "auth", "alg"], type: "string", description: "RS384 | ES384" },
  { name: "FHIR_SCOPE", path: ["fhir", "auth", "scope"], type: "string", description: "Requested scopes" },
  { name: "FHIR_TOKEN_URL", path: ["fhir", "auth", "tokenUrl"], type: "string", description: "Token endpoint (default: from .well-known/smart-configuration)" },
  { name: "WHATSAPP_PHONE_NUMBER_ID", path: ["whatsapp", "phoneNumberId"], type: "string", description: "Sending phone number id; with the token, switches from dry-run to the Cloud API" },
  { name: "WHATSAPP_ACCESS_TOKEN", path: ["whatsapp", "accessToken"], type: "string", description: "System user access token", secret: true },
  { name: "WHATSAPP_BUSINESS_ACCOUNT_ID", path: ["whatsapp", "businessAccountId"], type: "string", description: "WhatsApp Business Account id that owns the templates (for `templates compare`)" },
  { name: "WHATSAPP_APP_SECRET", path: ["whatsapp", "appSecret"], type: "string", description: "App secret that signs webhooks (X-Hub-Signature-256)", secret: true },
  { name: "WHATSAPP_VERIFY_TOKEN", path: ["whatsapp", "verifyToken"], type: "string", description: "Token Meta echoes in the GET verification handshake", secret: true },
  { name: "WHATSAPP_API_BASE", path: ["whatsapp", "apiBase"], type: "string", description: "Graph API base (default https://graph.facebook.com)" },
  { name: "WHATSAPP_GRAPH_VERSION", path: ["whatsapp", "graphVersion"], type: "string", description: "Pinned Graph API version, e.g. v23.0" },
  { name: "MAPPING_PORTAL_TOKEN_SECRET", path: ["mapping", "portal", "tokenSecret"], type: "string", description: "HMAC secret for portal link and reply tokens (required unless the sandbox FHIR server runs)", secret: true },
  { name: "ADMIN_TOKEN", path: ["admin", "token"], type: "string", description: "Bearer token for /admin/* (unset: admin answers on loopback only)", secret: true },
  { name: "WORKER_QUEUES", path: ["workers", "queues"], type: "string", description: "Queues this process works on, comma-separated: intake,delivery,audit,webhook (default all)" },
  { name: "LOG_LEVEL", path: ["log", "level"], type: "string", description: "fatal | error | warn | info | debug | trace | silent" },
];

/**
 * Every secret variable may instead name a file holding it (Docker/Kubernetes secrets): `<NAME>_FILE`,
 * the file's content trimmed. A source's inbound secret comes from `SOURCE_<NAME>_SECRET` (or its
 * `_FILE`): the source name upper-cased, `-` as `_`; it sets auth.token, auth.value or auth.secret,
 * whichever the source's auth type uses.
 */
export const fileSuffix = "_FILE";
export const sourceSecretVar = { pattern: /^SOURCE_([A-Z0-9_]+)_SECRET$/, description: "Inbound secret of source <NAME> (bearer token, header value or HMAC secret, by its auth.type)" };
export const sourceSecretName = (source: string) => `SOURCE_${source.toUpperCase().replaceAll("-", "_")}_SECRET`;

/** Not part of the schema: where the YAML file is. */
export const configFileVar = { name: "FHIR_NOTIFY_CONFIG", description: "Path of the YAML config file (default config/fhir-notify.yaml)" };
