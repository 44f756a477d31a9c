import { createHmac, timingSafeEqual } from "node:crypto";
import { AppError } from "../shared/app-error.js";
import type { SourceConfig } from "./source.config.js";

export interface AuthRequest {
  /** The body exactly as received; signatures are computed over these bytes, never over re-serialised JSON. */
  raw: Uint8Array;
  header(name: string): string | undefined;
  fromLoopback: boolean;
}

/**
 * Runs before the body is parsed (house style rule 12). Missing credentials are `login`, wrong ones
 * `security`; both are 401 and neither message contains what was sent.
 */
export function authenticate(source: SourceConfig, req: AuthRequest): void {
  const auth = source.auth;
  switch (auth.type) {
    case "none":
      if (!req.fromLoopback) throw new AppError("security", "this source has no credentials configured; only loopback requests are accepted");
      return;
    case "bearer": {
      const header = req.header("authorization");
      if (header === undefined) throw new AppError("login", "Authorization header is missing");
      const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
      if (!match?.[1] || !sameSecret(match[1], auth.token)) throw new AppError("security", "bearer token does not match");
      return;
    }
    case "header": {
      const given = req.header(auth.name);
      if (given === undefined) throw new AppError("login", `${auth.name} header is missing`);
      if (!sameSecret(given.trim(), auth.value)) throw new AppError("security", `${auth.name} header does not match`);
      return;
    }
    case "hmac": {
      const given = req.header(auth.header);
      if (given === undefined) throw new AppError("login", `${auth.header} header is missing`);
      if (!hasValidHmac(req.raw, given, auth.secret)) throw new AppError("security", `${auth.header} does not match request body`);
      return;
    }
  }
}

/** The configured secrets as bytes, made once: they are the same on every request. */
const expectedBytes = new Map<string, Buffer>();

/**
 * Constant-time over the content: timingSafeEqual on equal lengths. A length mismatch returns at
 * once, which tells a caller only the secret's length (configured secrets are random and at least
 * 16 characters; the length is no help in guessing them). No hash per request: on the hook path at
 * thousands of requests a second a SHA-256 of the token each time was a measurable cost.
 */
function sameSecret(given: string, expected: string): boolean {
  let want = expectedBytes.get(expected);
  if (want === undefined) {
    want = Buffer.from(expected, "utf8");
    expectedBytes.set(expected, want);
  }
  if (Buffer.byteLength(given, "utf8") !== want.length) return false;
  return timingSafeEqual(Buffer.from(given, "utf8"), want);
}

/** Medplum sends bare lowercase hex; a `sha256=` prefix (GitHub/Meta style) is tolerated for other senders. */
function hasValidHmac(raw: Uint8Array, header: string, secret: string): boolean {
  const hex = header.trim().replace(/^sha256=/i, "");
  if (!/^[0-9a-f]{64}$/i.test(hex)) return false;
  const given = Buffer.from(hex, "hex");
  const expected = createHmac("sha256", secret).update(raw).digest();
  return given.length === expected.length && timingSafeEqual(given, expected);
}
