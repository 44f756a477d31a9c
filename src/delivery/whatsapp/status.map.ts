import { z } from "zod";
import type { AcceptedStatus, SendFailure } from "./whatsapp.port.js";

/**
 * The only module that knows Meta's words: error codes, status strings, message_status values.
 * Source: Meta's Cloud API error-code page as summarised in whatsapp-cloud-api.md §7.3. When Meta
 * adds a code, add it here (and to the table test) — nowhere else.
 */

/** Outbound message statuses fhir-notify acts on. `played` (voice) is deliberately absent. */
export const vendorStatusSchema = z.enum(["sent", "delivered", "read", "failed"]);
export type VendorStatus = z.output<typeof vendorStatusSchema>;

/** Communication.statusReason codes (http://terminology.hl7.org/CodeSystem/communication-not-done-reason) we use. */
export type NotDoneReasonCode = "recipient-unavailable" | "invalid-phone-number" | "patient-objection" | "system-error";

/**
 * Code → our failure class. Classes (§7.2): throttled → "rate-limited"; transient → "transient";
 * permanent because of the recipient → "recipient"; permanent because of what we built (template,
 * parameters, request) → "template"; sender/token/account broken → "halt-sender". A code Meta does not
 * list (or we have not understood) is "unknown", which callers treat as permanent and alert on (§7.4).
 */
export function classify(code: number): SendFailure {
  // 200–299: "permission not granted or revoked" is a whole range on Meta's page.
  if (Number.isInteger(code) && code >= 200 && code <= 299) return "halt-sender";
  switch (code) {
    case 4: // app API call rate limit
    case 17: // Graph-wide "user request limit"
    case 613: // Graph-wide "calls exceeded the rate limit"
    case 80007: // WABA rate limit
    case 130429: // Cloud API throughput per number
    case 131056: // pair rate limit (same recipient)
    case 131057: // account in maintenance mode (throughput upgrade)
      return "rate-limited";
    case 1: // API unknown
    case 2: // API service
    case 131000: // something went wrong
    case 131016: // service temporarily unavailable
    case 133004: // server temporarily unavailable
      return "transient";
    case 131021: // recipient is the sender
    case 131026: // message undeliverable
    case 130472: // user's number is part of an experiment
    case 131049: // per-user marketing limit ("healthy ecosystem engagement")
    case 131050: // user stopped marketing messages
    case 130497: // business may not message users in this country
      return "recipient";
    case 100: // invalid parameter
    case 131008: // required parameter missing
    case 131009: // parameter value not valid
    case 131047: // re-engagement (free-form outside the window): we only send templates
    case 131051: // unsupported message type
    case 132000: // parameter count mismatch
    case 132001: // template does not exist in this language
    case 132005: // hydrated text too long
    case 132007: // template format character policy violated
    case 132012: // parameter format mismatch (named vs positional)
    case 132015: // template paused
    case 132016: // template disabled
    case 132018: // invalid template parameters (v23.0+)
    case 135000: // generic user error
      return "template";
    case 0: // AuthException
    case 190: // access token expired
    case 3: // capability or permission
    case 10: // permission denied
    case 33: // phone number deleted
    case 368: // temporarily blocked for policy violations
    case 131005: // access denied
    case 131031: // account locked
    case 131037: // 555 number without an approved display name
    case 131042: // eligibility / payment issue
    case 131045: // certificate / registration error
    case 131048: // spam rate limit
    case 133010: // number not registered
      return "halt-sender";
    case 131064: // seen in the wild, not on Meta's list as checked
      return "unknown";
    default:
      return "unknown";
  }
}

/**
 * Communication.statusReason for a message that failed with this code. Only recipient-side codes
 * get a specific reason; everything else is our (or Meta's) fault and reads "system-error".
 * 131009 can also mean a malformed number, but only Meta's free-text details tell, and we do not
 * read those, so it stays "system-error".
 */
export function notDoneReasonFor(code: number): NotDoneReasonCode {
  switch (code) {
    case 131021:
      return "invalid-phone-number";
    case 131026:
    case 130472:
    case 131049:
    case 130497:
      return "recipient-unavailable";
    case 131050:
      return "patient-objection";
    default:
      return "system-error";
  }
}

const second = 1000;
const minute = 60 * second;
/** Longest pause we ask for on one throttling answer; beyond this the queue's deadline logic takes over. */
const maxRetryAfterMs = 15 * minute;

/**
 * How long to wait before the next try of a throttled send. `attempt` counts earlier throttled
 * tries of the same message (0 for the first). Codes that are not throttling get undefined: the
 * queue's own backoff applies.
 */
export function retryAfterMsFor(code: number, attempt: number, random: () => number = Math.random): number | undefined {
  const x = Math.max(0, Math.floor(attempt));
  switch (code) {
    case 131056:
      // Meta: retry that recipient after 4^X seconds, X = 0, 1, 2, ...
      return Math.min(4 ** x * second, maxRetryAfterMs);
    case 130429:
      // Per-number throughput: about a second, with jitter so workers do not retry in lockstep.
      return second + Math.floor(random() * 500);
    case 131057:
      // Maintenance lasts up to about a minute.
      return minute;
    case 4:
    case 17:
    case 613:
    case 80007:
      // App/WABA call limits reset over minutes.
      return Math.min(minute * 2 ** x, maxRetryAfterMs);
    default:
      return undefined;
  }
}

/**
 * The send response's messages[0].message_status. Missing means a plain accept (non-template
 * sends omit it). A value we do not know is treated like "paused": a wamid exists, so the message
 * must never be resent, and we wait for webhooks.
 */
export function toAcceptedStatus(messageStatus: string | undefined): AcceptedStatus {
  switch (messageStatus) {
    case undefined:
    case "accepted":
      return "accepted";
    case "held_for_quality_assessment":
      return "held_for_quality_assessment";
    default:
      return "paused";
  }
}
