import type { Appointment } from "fhir/r4";
import { describe, expect, it } from "vitest";
import { createLedger } from "../../src/delivery/ledger.js";
import { createScheduler } from "../../src/delivery/schedule.js";
import type { MatchedRule } from "../../src/mapping/mapping.js";
import { manualClock } from "../../src/shared/clock.js";
import { deliveryId, fhirServerId } from "../../src/shared/ids.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetrics } from "../../src/shared/metrics.js";
import { ownedQueues } from "../support/redis-prefix.js";

const now = new Date("2026-12-01T09:00:00.000Z");
const appointment = { resourceType: "Appointment", id: "apt-7781", status: "booked", participant: [] } as Appointment & { id: string };
const server = fhirServerId("https://ehr.example.org/fhir");
const reminder = (start: string): MatchedRule => ({
  ruleId: "appointment-reminder",
  action: "send",
  category: "reminder",
  templateName: "appointment_reminder_v1",
  distinctBy: ["apt-7781", start],
  sendAt: new Date(Date.parse(start) - 24 * 3600_000),
});

function setup() {
  const { redis, prefix, queues } = ownedQueues();
  const ledger = createLedger(redis, prefix);
  const metrics = createMetrics({ defaultMetrics: false });
  const scheduler = createScheduler({ queues, ledger, clock: manualClock(now), log: createLogger("silent"), metrics, rulesHash: "h1", dryRun: true });
  return { ledger, scheduler, queues, metrics };
}

describe("delivery ids name the FHIR server, not the channel", () => {
  it("treats a server's base URL the same whatever its scheme, host case or trailing slash", () => {
    expect(fhirServerId("HTTPS://EHR.example.org/fhir/")).toBe(server);
    expect(fhirServerId("http://ehr.example.org/fhir")).toBe(server);
    expect(fhirServerId("https://ehr.example.org/fhir-b")).not.toBe(server);
  });

  it("decides once for the same change from two sources of one server, and a reschedule from either supersedes it", async () => {
    const { ledger, scheduler, metrics } = setup();
    const first = await scheduler.schedule({ source: "ehr-hook", server }, appointment, [reminder("2026-12-05T10:00:00.000Z")]);
    const second = await scheduler.schedule({ source: "ehr-topics", server }, appointment, [reminder("2026-12-05T10:00:00.000Z")]);
    expect(first.queued).toHaveLength(1);
    expect(second).toMatchObject({ queued: [], duplicates: first.queued });

    const moved = await scheduler.schedule({ source: "ehr-topics", server }, appointment, [reminder("2026-12-06T10:00:00.000Z")]);
    expect(moved.cancelled).toEqual(first.queued);
    // The superseded reminder is counted like any message that ends unsent, once.
    expect((await metrics.notDone.get()).values).toEqual([{ labels: { reason: "superseded" }, value: 1 }]);
    expect((await metrics.messages.get()).values).toEqual([{ labels: { template: "appointment_reminder_v1", state: "not-done" }, value: 1 }]);
    expect(await ledger.pending(server, "appointment-reminder", "Appointment/apt-7781")).toEqual(moved.queued);
  });

  it("keeps the id an older build gave a message, so an upgrade neither resends it nor leaves it pending twice", async () => {
    const { ledger, scheduler, queues } = setup();
    // What a build that scoped by source left behind: a queued reminder filed under "ehr-hook".
    const start = "2026-12-05T10:00:00.000Z";
    const legacy = deliveryId("ehr-hook", "appointment-reminder", "Appointment", "apt-7781", ["apt-7781", start]);
    await ledger.create({
      deliveryId: legacy,
      source: "ehr-hook",
      ruleId: "appointment-reminder",
      rulesHash: "h0",
      templateName: "appointment_reminder_v1",
      category: "reminder",
      resourceRef: "Appointment/apt-7781",
      distinctBy: ["apt-7781", start],
      scheduledFor: "2026-12-04T10:00:00.000Z",
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
    });

    const same = await scheduler.schedule({ source: "ehr-hook", server }, appointment, [reminder(start)]);
    expect(same).toMatchObject({ queued: [], duplicates: [legacy] });
    expect(await queues.byName.delivery.getJob(legacy)).toBeDefined();

    // A reschedule after the upgrade finds and cancels the old-style pending entry.
    const moved = await scheduler.schedule({ source: "ehr-hook", server }, appointment, [reminder("2026-12-06T10:00:00.000Z")]);
    expect(moved.cancelled).toEqual([legacy]);
    expect((await ledger.get(legacy))?.state).toBe("not-done");
    expect(await ledger.pending([server, "ehr-hook"], "appointment-reminder", "Appointment/apt-7781")).toEqual(moved.queued);
    expect(await queues.byName.delivery.getJob(legacy)).toBeUndefined();
  });
});
