import { createHmac, timingSafeEqual } from "node:crypto";

const signatureHeader = /^sha256=([0-9a-fA-F]{64})$/;

/**
 * X-Hub-Signature-256 check (whatsapp-cloud-api.md §4.3): HMAC-SHA256 of the exact received bytes,
 * keyed with the app secret. Run it before any decoding or JSON parsing; re-serialised JSON hashes
 * differently as soon as a patient types an accent, an emoji or a "/".
 */
export function hasValidSignature(raw: Uint8Array, header: string | undefined, appSecret: string): boolean {
  if (header === undefined || appSecret.length === 0) return false;
  const match = signatureHeader.exec(header.trim());
  const hex = match?.[1];
  if (hex === undefined) return false;
  const given = Buffer.from(hex, "hex");
  const expected = createHmac("sha256", appSecret).update(raw).digest();
  // timingSafeEqual throws on a length mismatch; the regex already pins 32 bytes, check anyway.
  return given.length === expected.length && timingSafeEqual(given, expected);
}
