import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { deliveryConfigSchema, reminderDeadline } from "../../src/delivery/delivery.config.js";
import { nextAllowedTime } from "../../src/delivery/quiet-hours.js";

const daytime = { start: "08:00", end: "21:00" } as const;
const iso = (at: Date) => at.toISOString();
const next = (at: string, window: { start: string; end: string }, zone: string) => iso(nextAllowedTime(new Date(at), window, zone));

describe("nextAllowedTime", () => {
  it("returns the same instant inside the window", () => {
    // 14:30 in New York (EST, UTC-5)
    expect(next("2025-01-15T19:30:00.000Z", daytime, "America/New_York")).toBe("2025-01-15T19:30:00.000Z");
  });

  it("opens at the window start itself and closes at the end, which is exclusive", () => {
    expect(next("2025-01-15T13:00:00.000Z", daytime, "America/New_York")).toBe("2025-01-15T13:00:00.000Z"); // 08:00 EST
    expect(next("2025-01-16T01:59:59.999Z", daytime, "America/New_York")).toBe("2025-01-16T01:59:59.999Z"); // 20:59:59.999
    expect(next("2025-01-16T02:00:00.000Z", daytime, "America/New_York")).toBe("2025-01-16T13:00:00.000Z"); // 21:00 → next 08:00
  });

  it("moves an early-morning time to 08:00 the same local day", () => {
    expect(next("2025-01-15T10:00:00.000Z", daytime, "America/New_York")).toBe("2025-01-15T13:00:00.000Z"); // 05:00 EST
  });

  it("uses the daylight-saving offset for the opening on the day clocks spring forward in New York", () => {
    // 22:30 EST on Sat 8 March 2025; clocks jump 02:00 → 03:00 on Sunday, so 08:00 is EDT (UTC-4).
    expect(next("2025-03-09T03:30:00.000Z", daytime, "America/New_York")).toBe("2025-03-09T12:00:00.000Z");
    // 01:30 EST, inside the night before the jump
    expect(next("2025-03-09T06:30:00.000Z", daytime, "America/New_York")).toBe("2025-03-09T12:00:00.000Z");
  });

  it("uses the standard offset for the opening on the day clocks fall back in New York", () => {
    // 22:00 EDT on Sat 1 November 2025; clocks go 02:00 EDT → 01:00 EST, so 08:00 is EST (UTC-5).
    expect(next("2025-11-02T02:00:00.000Z", daytime, "America/New_York")).toBe("2025-11-02T13:00:00.000Z");
    // 01:30 EST, the second pass through the repeated hour
    expect(next("2025-11-02T06:30:00.000Z", daytime, "America/New_York")).toBe("2025-11-02T13:00:00.000Z");
  });

  it("follows Madrid's summer time change on the last Sunday of March and October", () => {
    // 22:30 CET (UTC+1) on 29 March → 08:00 CEST (UTC+2) on 30 March
    expect(next("2025-03-29T21:30:00.000Z", daytime, "Europe/Madrid")).toBe("2025-03-30T06:00:00.000Z");
    // 22:00 CEST on 25 October → 08:00 CET on 26 October
    expect(next("2025-10-25T20:00:00.000Z", daytime, "Europe/Madrid")).toBe("2025-10-26T07:00:00.000Z");
  });

  it("opens at the transition when the window start falls into the spring-forward gap", () => {
    // 02:30 does not exist in New York on 9 March 2025; the first later wall time is 03:00 EDT.
    const window = { start: "02:30", end: "06:00" };
    expect(next("2025-03-09T05:00:00.000Z", window, "America/New_York")).toBe("2025-03-09T07:00:00.000Z");
  });

  it("opens at the first occurrence of a start time that happens twice, but never before the given time", () => {
    const window = { start: "01:30", end: "05:00" };
    // 00:00 EDT → the first 01:30 (EDT, UTC-4)
    expect(next("2025-11-02T04:00:00.000Z", window, "America/New_York")).toBe("2025-11-02T05:30:00.000Z");
    // 01:10 EST, after the first 01:30 has passed → the second 01:30 (EST, UTC-5)
    expect(next("2025-11-02T06:10:00.000Z", window, "America/New_York")).toBe("2025-11-02T06:30:00.000Z");
  });

  it("supports a window that crosses midnight", () => {
    const night = { start: "22:00", end: "06:00" };
    expect(next("2025-01-15T12:00:00.000Z", night, "Europe/Madrid")).toBe("2025-01-15T21:00:00.000Z"); // 13:00 → 22:00 CET
    expect(next("2025-01-15T22:30:00.000Z", night, "Europe/Madrid")).toBe("2025-01-15T22:30:00.000Z"); // 23:30, inside
    expect(next("2025-01-16T02:00:00.000Z", night, "Europe/Madrid")).toBe("2025-01-16T02:00:00.000Z"); // 03:00, inside
    expect(next("2025-01-16T05:00:00.000Z", night, "Europe/Madrid")).toBe("2025-01-16T21:00:00.000Z"); // 06:00 → 22:00
  });

  it("rejects an unknown time zone and an empty window", () => {
    expect(() => nextAllowedTime(new Date("2025-01-15T12:00:00Z"), daytime, "Mars/Olympus_Mons")).toThrow(RangeError);
    expect(() => nextAllowedTime(new Date("2025-01-15T12:00:00Z"), { start: "08:00", end: "08:00" }, "UTC")).toThrow(RangeError);
  });

  const zones = ["America/New_York", "Europe/Madrid", "America/Sao_Paulo", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"];
  const hhmm = fc.tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 })).map(([h, m]) => `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}`);

  test.prop([
    fc.date({ min: new Date("2024-01-01T00:00:00Z"), max: new Date("2027-01-01T00:00:00Z"), noInvalidDate: true }),
    fc.constantFrom(...zones),
    hhmm,
    hhmm,
  ])("never returns a time before the given one, and the result is itself allowed", (at, zone, start, end) => {
    fc.pre(start !== end);
    const allowed = nextAllowedTime(at, { start, end }, zone);
    expect(allowed.getTime()).toBeGreaterThanOrEqual(at.getTime());
    expect(allowed.getTime() - at.getTime()).toBeLessThanOrEqual(26 * 3600_000);
    expect(nextAllowedTime(allowed, { start, end }, zone).getTime()).toBe(allowed.getTime());
  });
});

describe("delivery config", () => {
  it("fills every default from an empty object", () => {
    expect(deliveryConfigSchema.parse({})).toEqual({
      quietHours: { enabled: true, start: "08:00", end: "21:00" },
      rateLimits: { perSenderPerSecond: 80, perRecipientSeconds: 6 },
      retries: { attempts: 6, backoffMs: 2000 },
      messagingBudget: { alertAtRatio: 0.8 },
      reminderNotAfter: { minutesBeforeStart: 0 },
      expiryBufferMinutes: 60,
      unknownOutcomeWindowMinutes: 10,
      keepCompletedJobsHours: 72,
      keepFinishedSendJobsMinutes: 60,
      ledgerRetentionDays: 35,
    });
  });

  it("accepts a quiet-hours window crossing midnight and rejects an empty one", () => {
    expect(deliveryConfigSchema.parse({ quietHours: { start: "22:00", end: "06:00" } }).quietHours).toMatchObject({ start: "22:00", end: "06:00" });
    expect(deliveryConfigSchema.safeParse({ quietHours: { start: "09:00", end: "09:00" } }).success).toBe(false);
  });

  it("rejects malformed times, unknown zones and unknown keys", () => {
    expect(deliveryConfigSchema.safeParse({ quietHours: { start: "8:00" } }).success).toBe(false);
    expect(deliveryConfigSchema.safeParse({ quietHours: { end: "24:00" } }).success).toBe(false);
    expect(deliveryConfigSchema.safeParse({ quietHours: { timeZone: "Europe/Atlantis" } }).success).toBe(false);
    expect(deliveryConfigSchema.safeParse({ quietHours: { timeZone: "Europe/Madrid" } }).success).toBe(true);
    expect(deliveryConfigSchema.safeParse({ rateLimits: { perSenderPerSecnd: 60 } }).success).toBe(false);
    expect(deliveryConfigSchema.safeParse({ retries: { attempts: 0 } }).success).toBe(false);
  });

  it("puts the reminder deadline the configured minutes before the appointment start", () => {
    const start = new Date("2025-03-12T08:30:00.000Z");
    expect(iso(reminderDeadline(start, { minutesBeforeStart: 0 }))).toBe("2025-03-12T08:30:00.000Z");
    expect(iso(reminderDeadline(start, { minutesBeforeStart: 90 }))).toBe("2025-03-12T07:00:00.000Z");
  });
});
