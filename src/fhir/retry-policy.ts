/**
 * Which answers are worth repeating, and how long to wait. 429 and 5xx mean "not now"; 501 (Not
 * Implemented) is a 5xx that no retry can fix. Every 4xx is a statement about our request.
 */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status !== 501);
}

const baseDelayMs = 200;
const maxDelayMs = 5_000;

/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"):
 * a uniform wait in [0, min(cap, base·2^attempt)), so many workers that failed together do not
 * come back together. `attempt` is 0 for the first retry.
 */
export function backoffDelayMs(attempt: number, random: () => number): number {
  return Math.floor(random() * Math.min(maxDelayMs, baseDelayMs * 2 ** attempt));
}

/** Retry-After is either delta-seconds or an HTTP-date (RFC 9110 §10.2.3); anything else is ignored. */
export function retryAfterMs(header: string | null, now: Date): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // Date.parse alone would accept "-5" or "2"; an HTTP-date always ends in GMT (RFC 9110 §5.6.7).
  if (!/^[A-Za-z]{3},? .* GMT$/.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now.getTime());
}

/**
 * A Retry-After longer than this is not waited out inside one call: the call fails as retryable
 * and the queue's own backoff takes over, instead of a worker holding a job for minutes.
 */
export const maxInlineWaitMs = 30_000;
