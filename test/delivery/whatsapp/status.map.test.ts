import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { classify, notDoneReasonFor, retryAfterMsFor, toAcceptedStatus } from "../../../src/delivery/whatsapp/status.map.js";
import type { SendFailure } from "../../../src/delivery/whatsapp/whatsapp.port.js";

interface Row {
  code: number;
  http: number;
  metaClass: "throttled" | "transient" | "permanent" | "halt" | "unknown";
  failure: SendFailure;
  notDoneReason: string;
  title: string;
}
// The §7.3 table of whatsapp-cloud-api.md, one row per code (200–299 sampled at both ends and inside).
const table = JSON.parse(readFileSync(new URL("../../fixtures/whatsapp/error-codes.json", import.meta.url), "utf8")) as Row[];

const allowed: Record<Row["metaClass"], readonly SendFailure[]> = {
  throttled: ["rate-limited"],
  transient: ["transient"],
  permanent: ["recipient", "template"],
  halt: ["halt-sender"],
  unknown: ["unknown"],
};

describe("classify", () => {
  it.each(table)("maps code $code ($metaClass: $title) to $failure", (row) => {
    expect(classify(row.code)).toBe(row.failure);
    expect(allowed[row.metaClass]).toContain(classify(row.code));
  });

  it.each([999999, 131064, -1, 300, 199, 1.5])("treats code %s, which the table does not list, as unknown", (code) => {
    expect(classify(code)).toBe("unknown");
  });

  it("makes only throttled and transient codes retryable", () => {
    for (const row of table) {
      const failure = classify(row.code);
      expect(failure === "rate-limited" || failure === "transient").toBe(row.metaClass === "throttled" || row.metaClass === "transient");
    }
  });
});

describe("notDoneReasonFor", () => {
  it.each(table)("gives code $code the Communication reason $notDoneReason", (row) => {
    expect(notDoneReasonFor(row.code)).toBe(row.notDoneReason);
  });

  it("falls back to system-error for a code nobody knows", () => {
    expect(notDoneReasonFor(424242)).toBe("system-error");
  });
});

describe("retryAfterMsFor", () => {
  it("backs off a pair-rate-limited recipient by 4^X seconds", () => {
    expect([0, 1, 2, 3].map((x) => retryAfterMsFor(131056, x))).toEqual([1_000, 4_000, 16_000, 64_000]);
  });

  it("caps the pair-rate backoff at fifteen minutes", () => {
    expect(retryAfterMsFor(131056, 12)).toBe(15 * 60_000);
  });

  it("retries per-number throughput after about a second with up to half a second of jitter", () => {
    expect(retryAfterMsFor(130429, 0, () => 0)).toBe(1_000);
    expect(retryAfterMsFor(130429, 3, () => 0.999)).toBe(1_499);
  });

  it("pauses a minute for maintenance mode", () => {
    expect(retryAfterMsFor(131057, 0)).toBe(60_000);
  });

  it("backs off app and WABA call limits in minutes", () => {
    expect(retryAfterMsFor(4, 0)).toBe(60_000);
    expect(retryAfterMsFor(80007, 2)).toBe(240_000);
  });

  it.each(table.filter((r) => r.metaClass !== "throttled"))("leaves non-throttling code $code to the queue's backoff", (row) => {
    expect(retryAfterMsFor(row.code, 0)).toBeUndefined();
  });

  it.each(table.filter((r) => r.metaClass === "throttled"))("gives throttling code $code a delay", (row) => {
    expect(retryAfterMsFor(row.code, 0)).toBeGreaterThan(0);
  });
});

describe("toAcceptedStatus", () => {
  it.each([
    [undefined, "accepted"],
    ["accepted", "accepted"],
    ["held_for_quality_assessment", "held_for_quality_assessment"],
    ["paused", "paused"],
    ["something_new", "paused"],
  ] as const)("reads message_status %s as %s", (input, expected) => {
    expect(toAcceptedStatus(input)).toBe(expected);
  });
});
