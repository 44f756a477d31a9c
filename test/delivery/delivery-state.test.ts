import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import type { DeliveryRecord, DeliveryState, StatusEvent } from "../../src/delivery/delivery-record.js";
import { applyStatus, nextState, stateOf, statePrecedence, toCommunicationStatus } from "../../src/delivery/delivery-state.js";
import { queuedReminder } from "../fixtures/delivery-record.js";

const allStates: readonly DeliveryState[] = [
  "queued",
  "dispatching",
  "unknown",
  "accepted",
  "held",
  "sent",
  "delivered",
  "read",
  "failed",
  "not-done",
  "expired",
];

const queuedRecord = queuedReminder;

const fold = (record: DeliveryRecord, events: readonly StatusEvent[]) => events.reduce((r, e) => applyStatus(r, e), record);

describe("nextState", () => {
  it("ignores a late sent after delivered", () => {
    expect(nextState("delivered", "sent")).toBe("delivered");
  });

  it("moves to read without a preceding delivered", () => {
    expect(nextState("sent", "read")).toBe("read");
    expect(nextState("accepted", "read")).toBe("read");
  });

  it("keeps a failure when only lower live states arrive afterwards", () => {
    for (const late of ["queued", "dispatching", "unknown", "accepted", "held", "sent"] as const) {
      expect(nextState("failed", late)).toBe("failed");
    }
  });

  it("lets delivery evidence win over an earlier failure", () => {
    expect(nextState("failed", "delivered")).toBe("delivered");
    expect(nextState("failed", "read")).toBe("read");
  });

  it("keeps delivered when a failure arrives after it (several devices)", () => {
    expect(nextState("delivered", "failed")).toBe("delivered");
    expect(nextState("read", "failed")).toBe("read");
  });

  it("leaves not-done and expired only for delivered or read", () => {
    for (const terminal of ["not-done", "expired"] as const) {
      for (const live of ["queued", "dispatching", "unknown", "accepted", "held", "sent"] as const) {
        expect(nextState(terminal, live)).toBe(terminal);
      }
      expect(nextState(terminal, "delivered")).toBe("delivered");
      expect(nextState(terminal, "read")).toBe("read");
    }
  });

  it("follows the documented rank for live states", () => {
    const rank = ["queued", "dispatching", "accepted", "sent", "delivered", "read"] as const;
    for (const [i, lower] of rank.entries()) {
      for (const higher of rank.slice(i + 1)) {
        expect(nextState(lower, higher)).toBe(higher);
        expect(nextState(higher, lower)).toBe(higher);
      }
    }
  });

  it("breaks ties inside a shared rank the same way in both orders", () => {
    expect(nextState("dispatching", "unknown")).toBe(nextState("unknown", "dispatching"));
    expect(nextState("accepted", "held")).toBe(nextState("held", "accepted"));
  });

  test.prop([fc.constantFrom(...allStates), fc.constantFrom(...allStates)])("is commutative for every pair of states", (a, b) => {
    expect(nextState(a, b)).toBe(nextState(b, a));
  });
});

describe("stateOf", () => {
  it("is queued for no events and the highest state for any order of events", () => {
    expect(stateOf([])).toBe("queued");
    const at = "2026-11-25T10:00:00.000Z";
    expect(stateOf([{ state: "read", at }, { state: "accepted", at }, { state: "sent", at }])).toBe("read");
  });
});

describe("toCommunicationStatus", () => {
  it("maps every delivery state to the R4 Communication status of whatsapp-cloud-api §10.7", () => {
    const expected: Record<DeliveryState, string> = {
      queued: "preparation",
      dispatching: "preparation",
      unknown: "unknown",
      accepted: "in-progress",
      held: "in-progress",
      sent: "in-progress",
      delivered: "completed",
      read: "completed",
      failed: "not-done",
      "not-done": "not-done",
      expired: "not-done",
    };
    for (const state of allStates) expect(toCommunicationStatus(state)).toBe(expected[state]);
  });
});

describe("applyStatus", () => {
  it("records the event, advances the state and sets the matching timestamp", () => {
    const record = queuedRecord();
    const after = applyStatus(record, { state: "delivered", at: "2025-03-04T09:15:11.000Z" });
    expect(after.state).toBe("delivered");
    expect(after.deliveredAt).toBe("2025-03-04T09:15:11.000Z");
    expect(after.history).toEqual([{ state: "delivered", at: "2025-03-04T09:15:11.000Z" }]);
    expect(after.updatedAt).toBe("2025-03-04T09:15:11.000Z");
    expect(record.history).toEqual([]); // the input is not mutated
    expect(record.state).toBe("queued");
  });

  it("returns the same record when the same (state, at, code) is applied again", () => {
    const once = applyStatus(queuedRecord(), { state: "failed", at: "2025-03-04T09:15:02.000Z", code: 131026 });
    const twice = applyStatus(once, { state: "failed", at: "2025-03-04T09:15:02Z", code: 131026 });
    expect(twice).toBe(once);
  });

  it("keeps a late lower status in the history without changing the state", () => {
    const delivered = applyStatus(queuedRecord(), { state: "delivered", at: "2025-03-04T09:15:11.000Z" });
    const after = applyStatus(delivered, { state: "sent", at: "2025-03-04T09:15:07.000Z" });
    expect(after.state).toBe("delivered");
    expect(after.sentAt).toBe("2025-03-04T09:15:07.000Z");
    expect(after.history.map((e) => e.state)).toEqual(["delivered", "sent"]);
    expect(after.updatedAt).toBe("2025-03-04T09:15:11.000Z");
  });

  it("counts WhatsApp's acceptance as sent and keeps the earliest sent time", () => {
    const accepted = applyStatus(queuedRecord(), { state: "accepted", at: "2025-03-04T09:15:06.000Z" });
    const sent = applyStatus(accepted, { state: "sent", at: "2025-03-04T09:15:07.000Z" });
    expect(sent.sentAt).toBe("2025-03-04T09:15:06.000Z");
  });

  it("stores the failure's error code and lets a later delivery win", () => {
    const failed = applyStatus(queuedRecord(), { state: "failed", at: "2025-03-04T09:15:02.000Z", code: 131026 });
    expect(failed.state).toBe("failed");
    expect(failed.vendorCode).toBe(131026);
    expect(failed.failedAt).toBe("2025-03-04T09:15:02.000Z");
    const delivered = applyStatus(failed, { state: "delivered", at: "2025-03-04T09:15:09.000Z" });
    expect(delivered.state).toBe("delivered");
    expect(delivered.failedAt).toBe("2025-03-04T09:15:02.000Z");
  });

  it("uses the observation time for updatedAt when given", () => {
    const after = applyStatus(queuedRecord(), { state: "sent", at: "2025-03-04T09:15:07.000Z" }, "2025-03-04T09:20:00.000Z");
    expect(after.updatedAt).toBe("2025-03-04T09:20:00.000Z");
  });

  const arbEvent: fc.Arbitrary<StatusEvent> = fc.record(
    {
      state: fc.constantFrom(...allStates),
      at: fc.integer({ min: 0, max: 120 }).map((s) => new Date(Date.UTC(2025, 2, 4, 9, 15, s)).toISOString()),
      code: fc.constantFrom(131026, 131047, 132001, 130472),
    },
    { requiredKeys: ["state", "at"] },
  );

  /** A set of distinct events, plus the same events shuffled with some of them repeated. */
  const arbScenario = fc
    .uniqueArray(arbEvent, { maxLength: 8, selector: (e) => `${e.state}|${e.at}|${e.code ?? ""}` })
    .chain((events) => fc.tuple(fc.constant(events), fc.subarray(events)))
    .chain(([events, repeats]) => fc.tuple(fc.constant(events), fc.shuffledSubarray([...events, ...repeats], { minLength: events.length + repeats.length })));

  test.prop([arbScenario])("projects any permutation or duplication of the same events to the same record, never moving down", ([events, reordered]) => {
    const base = queuedRecord();
    const reference = fold(base, events);

    let current = base;
    for (const event of reordered) {
      const next = applyStatus(current, event);
      expect(statePrecedence(next.state)).toBeGreaterThanOrEqual(statePrecedence(current.state));
      current = next;
    }

    expect(current.state).toBe(reference.state);
    expect(current.sentAt).toBe(reference.sentAt);
    expect(current.deliveredAt).toBe(reference.deliveredAt);
    expect(current.readAt).toBe(reference.readAt);
    expect(current.failedAt).toBe(reference.failedAt);
    expect(current.vendorCode).toBe(reference.vendorCode);
    expect(current.history).toHaveLength(events.length);
    expect(new Set(current.history.map((e) => JSON.stringify(e)))).toEqual(new Set(events.map((e) => JSON.stringify(e))));
  });
});
