import { pino, type Logger, type DestinationStream } from "pino";

/**
 * The one redaction list. Logs leave the trust boundary, so anything that can hold a
 * name, a phone number, message text, a resource body or a secret is censored wherever
 * it appears at these paths. Redaction is the safety net; the plan is to log ids only.
 */
export const redactPaths = [
  "body",
  "*.body",
  "payload",
  "*.payload",
  "resource",
  "*.resource",
  "to",
  "*.to",
  "phone",
  "*.phone",
  "parameters",
  "*.parameters",
  "text",
  "*.text",
  "name",
  "*.name",
  "given",
  "family",
  "telecom",
  "*.telecom",
  "details",
  "*.details",
  "token",
  "accessToken",
  "appSecret",
  "secret",
  "authorization",
  "req.headers.authorization",
  'req.headers["x-hub-signature-256"]',
  'req.headers["x-signature"]',
  "headers.authorization",
  "err.config",
  "err.response",
];

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "fhir-notify" },
      redact: { paths: redactPaths, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

export type { Logger };
