import type { Communication } from "fhir/r4";
import type { DeliveryRecord, DeliveryState, StatusEvent } from "./delivery-record.js";

/**
 * Precedence of every state, so that merging two states is "take the higher one". Because that
 * merge is a max over a total order it is commutative, associative and idempotent: webhooks
 * that arrive late, twice or out of order always project to the same state
 * (whatsapp-cloud-api.md §5.3, fhir-notifications.md §10.2).
 *
 * - Live states follow the documented rank: queued 0 < dispatching = unknown 1 <
 *   accepted = held 2 < sent 3. Within a shared rank the state that can only be entered later
 *   wins (unknown is only reached from dispatching; held is Meta's verdict on an accepted send),
 *   so equal ranks cannot make the result depend on arrival order.
 * - The terminal side states sit above every live state (a late `sent` never revives a failure)
 *   and below delivered/read (delivery evidence is the one way out of them). Among themselves the
 *   most definite outcome wins: our own decision not to send (not-done) over Meta's failure
 *   report (failed) over an inference from silence (expired).
 */
const precedence = {
  queued: 0,
  dispatching: 1,
  unknown: 2,
  accepted: 3,
  held: 4,
  sent: 5,
  expired: 6,
  failed: 7,
  "not-done": 8,
  delivered: 9,
  read: 10,
} as const satisfies Record<DeliveryState, number>;

/** Position of a state in the merge order; a projection never moves to a lower value. */
export function statePrecedence(state: DeliveryState): number {
  return precedence[state];
}

/** The state after `incoming` is observed in `current`: never a downgrade, whatever the order. */
export function nextState(current: DeliveryState, incoming: DeliveryState): DeliveryState {
  return precedence[incoming] > precedence[current] ? incoming : current;
}

/** The state a history of events projects to, in any order (queued before the first event). */
export function stateOf(history: readonly StatusEvent[]): DeliveryState {
  return history.reduce<DeliveryState>((state, event) => nextState(state, event.state), "queued");
}

function sameInstant(a: string, b: string): boolean {
  if (a === b) return true;
  const ta = Date.parse(a);
  return !Number.isNaN(ta) && ta === Date.parse(b);
}

function isSameEvent(a: StatusEvent, b: StatusEvent): boolean {
  return a.state === b.state && a.code === b.code && sameInstant(a.at, b.at);
}

function earliest(stored: string | undefined, candidate: string): string {
  if (stored === undefined) return candidate;
  return Date.parse(candidate) < Date.parse(stored) ? candidate : stored;
}

function latest(stored: string, candidate: string): string {
  return Date.parse(candidate) > Date.parse(stored) ? candidate : stored;
}

type TimestampField = "sentAt" | "deliveredAt" | "readAt" | "failedAt";

/** Which timestamp an event sets. `sent` in FHIR means "WhatsApp accepted or sent it" (§10.1). */
function timestampFieldFor(state: DeliveryState): TimestampField | undefined {
  switch (state) {
    case "accepted":
    case "held":
    case "sent":
      return "sentAt";
    case "delivered":
      return "deliveredAt";
    case "read":
      return "readAt";
    case "failed":
      return "failedAt";
    case "queued":
    case "dispatching":
    case "unknown":
    case "not-done":
    case "expired":
      return undefined;
  }
}

/**
 * Applies one status event to a delivery record without mutating it. Every distinct event is kept
 * in `history` (the ledger is append-only, §5.3 rule 4); re-applying an event already in the
 * history returns the record unchanged. Timestamps keep the earliest value seen, and the vendor
 * error code is the one of the earliest failure, so the result does not depend on arrival order.
 *
 * `observedAt` is when we learned of the event (defaults to the event time); `updatedAt` never
 * moves backwards.
 */
export function applyStatus(record: DeliveryRecord, event: StatusEvent, observedAt: string = event.at): DeliveryRecord {
  if (record.history.some((known) => isSameEvent(known, event))) return record;

  const next: DeliveryRecord = {
    ...record,
    state: nextState(record.state, event.state),
    history: [...record.history, { ...event }],
    updatedAt: latest(record.updatedAt, observedAt),
  };

  const field = timestampFieldFor(event.state);
  if (field !== undefined) next[field] = earliest(record[field], event.at);

  const code = vendorCodeOf(next.history);
  if (code !== undefined) next.vendorCode = code;
  return next;
}

/**
 * The error code that explains the record: a failure's code before any other, then the earliest,
 * then the highest. Chosen from the whole history so arrival order cannot change it.
 */
function vendorCodeOf(history: readonly StatusEvent[]): number | undefined {
  let best: StatusEvent | undefined;
  for (const event of history) {
    if (event.code === undefined) continue;
    if (best === undefined || ranksBefore(event, best)) best = event;
  }
  return best?.code;
}

function ranksBefore(a: StatusEvent, b: StatusEvent): boolean {
  const aFailed = a.state === "failed";
  if (aFailed !== (b.state === "failed")) return aFailed;
  const ta = Date.parse(a.at);
  const tb = Date.parse(b.at);
  if (ta !== tb) return ta < tb;
  return (a.code ?? 0) > (b.code ?? 0);
}

/** R4 Communication.status for a delivery state (whatsapp-cloud-api.md §10.7). */
export function toCommunicationStatus(state: DeliveryState): Communication["status"] {
  switch (state) {
    case "queued":
    case "dispatching":
      return "preparation";
    case "accepted":
    case "held":
    case "sent":
      return "in-progress";
    case "delivered":
    case "read":
      return "completed";
    case "failed":
    case "not-done":
    case "expired":
      return "not-done";
    case "unknown":
      return "unknown";
  }
}
