import { cpSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Appointment } from "fhir/r4";
import type { Job } from "bullmq";
import { describe, expect, it } from "vitest";
import { auditConfigSchema } from "../../src/audit/audit.config.js";
import { createLedger } from "../../src/delivery/ledger.js";
import { createOptOutStore } from "../../src/delivery/opt-out.js";
import { endedByReplyIndex, handleInbound } from "../../src/audit/replies.worker.js";
import { createScheduler } from "../../src/delivery/schedule.js";
import { loadMappingSet } from "../../src/mapping/load-rules.js";
import type { MatchedRule } from "../../src/mapping/mapping.js";
import { manualClock } from "../../src/shared/clock.js";
import { auditJobId, fhirServerId } from "../../src/shared/ids.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetrics } from "../../src/shared/metrics.js";
import { FakeFhir } from "../fakes/fhir.fake.js";
import { ownedQueues } from "../support/redis-prefix.js";
import { mappingsDir, ruleFolder, testSite } from "../mapping/site.js";

const now = new Date("2026-12-01T09:00:00.000Z");
const start = "2026-12-04T10:00:00.000Z";
const server = fhirServerId("https://ehr.example.org/fhir");
const scope = { source: "ehr-hook", server };
const appointment = {
  resourceType: "Appointment",
  id: "apt-7781",
  status: "booked",
  start,
  participant: [{ actor: { reference: "Patient/pat-204" }, status: "accepted" }],
} as Appointment & { id: string };

/** A site that reminds twice: the shipped 24 h reminder and a second one 2 h before, which a CONFIRM makes pointless. */
function twoReminderRules() {
  const dir = ruleFolder({});
  cpSync(mappingsDir, dir, { recursive: true });
  writeFileSync(
    join(dir, "appointment-reminder-day-of.yaml"),
    [
      "id: appointment-reminder-day-of",
      "resourceType: Appointment",
      "trigger:",
      "  when: [\"status = 'booked'\", \"start > now()\"]",
      "  changes: [status, start]",
      "template: appointment_reminder_v1",
      "category: reminder",
      "send: { before: start, hours: 2 }",
      "distinctBy: [id, start]",
      "slots: [patientFirstName, locationLabel, appointmentDate, appointmentTime]",
      "buttons: [{ reply: CONFIRM }, { reply: RESCHEDULE }]",
      "endedByReply: [CONFIRM]",
      "",
    ].join("\n"),
  );
  return loadMappingSet(dir).rules;
}

const reminder = (ruleId: string, hours: number): MatchedRule => ({
  ruleId,
  action: "send",
  category: "reminder",
  templateName: "appointment_reminder_v1",
  distinctBy: ["apt-7781", start],
  sendAt: new Date(Date.parse(start) - hours * 3600_000),
});

async function setup() {
  const { redis, prefix, queues } = ownedQueues();
  const ledger = createLedger(redis, prefix);
  const log = createLogger("silent");
  const scheduler = createScheduler({ queues, ledger, clock: manualClock(now), log, metrics: createMetrics({ defaultMetrics: false }), rulesHash: "h1", dryRun: true });
  const handle = handleInbound({
    fhir: new FakeFhir(),
    ledger,
    optOuts: createOptOutStore(redis, prefix),
    audit: auditConfigSchema.parse({}),
    organizationRef: undefined,
    consent: testSite().consent,
    endedByReply: endedByReplyIndex(twoReminderRules()),
    scheduler,
    log,
  });
  const planned = await scheduler.schedule(scope, appointment, [reminder("appointment-reminder", 24), reminder("appointment-reminder-day-of", 2)]);
  const [first, second] = planned.queued as [string, string];
  // The 24 h reminder went out; the patient taps a button on it.
  const wamid = "wamid.HBgLMTMxMjU1NTAxMDQVAgARGBI0QzE5QkQ3OTlCQzQyQTVBRDUA";
  await ledger.recordAccepted({ deliveryId: first, source: scope.source, server, ruleId: "appointment-reminder", resourceRef: "Appointment/apt-7781" }, wamid, { state: "sent", at: now.toISOString() }, Date.parse(start));
  const reply = (action: "confirm" | "reschedule", inboundId: string) =>
    handle({ id: inboundId, name: "inbound-message", data: { inboundId, contextWamid: wamid, action, receivedAt: now.toISOString() } } as Job);
  return { ledger, queues, first, second, reply };
}

describe("a reply ends the messages it answers", () => {
  it("cancels the waiting day-of reminder when the patient confirms the first one, recorded as not-done 'answered'", async () => {
    const { ledger, queues, first, second, reply } = await setup();
    expect(await queues.byName.delivery.getJob(second)).toBeDefined();

    expect(await reply("confirm", "wamid.HBgLMTMxMjU1NTAxMDQVAgASGBQzRUIwQzJENUU3RjkxMUI0NTY3QQA=")).toBe("confirm");

    const ended = await ledger.get(second);
    expect(ended).toMatchObject({ state: "not-done", reason: "answered", reasonDetail: "the patient already replied CONFIRM to an earlier message" });
    expect(await queues.byName.delivery.getJob(second)).toBeUndefined();
    expect(await queues.byName.audit.getJob(auditJobId(second, "not-done"))).toBeDefined();
    expect(await ledger.pending(server, "appointment-reminder-day-of", "Appointment/apt-7781")).toEqual([]);
    // The message that was answered keeps its own life.
    expect((await ledger.get(first))?.state).toBe("sent");
  });

  it("leaves the reminder waiting for a reply its rule does not list", async () => {
    const { ledger, queues, second, reply } = await setup();
    await reply("reschedule", "wamid.HBgLMTMxMjU1NTAxMDQVAgASGBQ5QTFDM0U1RjcwOTJCNEQ2RjhBMQA=");
    expect((await ledger.get(second))?.state).toBe("queued");
    expect(await queues.byName.delivery.getJob(second)).toBeDefined();
  });
});

describe("endedByReply in a rule", () => {
  it("lists, per resource type and reply word, the enabled rules a reply ends", () => {
    const index = endedByReplyIndex(twoReminderRules());
    expect([...index("Appointment", "CONFIRM")].sort()).toEqual(["appointment-reminder", "appointment-reminder-day-of"]);
    expect(index("Appointment", "RESCHEDULE")).toEqual(["appointment-reminder"]);
    expect(index("DiagnosticReport", "CONFIRM")).toEqual([]);
  });
});
