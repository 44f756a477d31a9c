import { createHash, timingSafeEqual } from "node:crypto";

/** Meta's challenge is a short number; anything else is not echoed back (it would be reflected content). */
const challengeShape = /^[A-Za-z0-9._~-]{1,256}$/;

/**
 * GET handshake (whatsapp-cloud-api.md §4.2): the challenge to answer with 200, or undefined for 403.
 * Without a configured verify token no subscription can be confirmed.
 */
export function answerChallenge(
  query: { mode?: string; token?: string; challenge?: string },
  verifyToken: string | undefined,
): string | undefined {
  if (verifyToken === undefined || verifyToken.length === 0) return undefined;
  if (query.mode !== "subscribe" || query.token === undefined || query.challenge === undefined) return undefined;
  if (!challengeShape.test(query.challenge)) return undefined;
  return sameSecret(query.token, verifyToken) ? query.challenge : undefined;
}

/** Constant-time for any lengths: compare digests, so neither content nor length leaks through timing. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given, "utf8").digest();
  const b = createHash("sha256").update(expected, "utf8").digest();
  return timingSafeEqual(a, b);
}
