import { describe, expect, it } from "vitest";
import { manualClock } from "../../../src/shared/clock.js";
import { waitFor } from "../../support/wait-for.js";
import { startDeliveryService, startIn, type DeliveryKit } from "./delivery-kit.js";

const hour = 3_600_000;
const leadHours = 24;

/** BullMQ delays run on the wall clock; the service's own clock is held still, so delays are exact. */
async function reminderKit() {
  const clock = manualClock(new Date());
  const kit = await startDeliveryService({ clock });
  return { kit, clock };
}

function remindersSentTo(kit: DeliveryKit, phone: string): number {
  return kit.graph.records.filter((m) => m.to === phone.replace(/^\+/, "") && m.template === "appointment_reminder_v1").length;
}

describe("appointment reminders on a controllable clock", () => {
  it("schedules the reminder leadHours before start and sends it when its time comes", async () => {
    const { kit, clock } = await reminderKit();
    const phone = "+12025550151";
    const patientId = await kit.addPatient(phone);
    const start = startIn(30, clock.now());
    const appt = await kit.book(patientId, start);

    const reminder = await kit.delivery("appointment-reminder", appt.id);
    const sendAt = new Date(start.getTime() - leadHours * hour);
    expect(reminder.state).toBe("queued");
    expect(reminder.scheduledFor).toBe(sendAt.toISOString());
    const job = await kit.delayed(reminder.deliveryId);
    expect(job.delay).toBe(sendAt.getTime() - clock.now().getTime());
    // The confirmation went out now; the reminder waits.
    await kit.delivery("appointment-booked", appt.id, (r) => r.state === "accepted");
    expect(remindersSentTo(kit, phone)).toBe(0);

    clock.set(new Date(sendAt.getTime() + 1_000));
    await job.promote();
    await kit.until(reminder.deliveryId, "the reminder accepted", (r) => r.state === "accepted");
    expect(remindersSentTo(kit, phone)).toBe(1);
    const sent = await kit.sentFor(reminder.deliveryId);
    expect(sent?.buttons.map((b) => b.subType)).toEqual(["quick_reply", "quick_reply"]);
  });

  it("supersedes the pending reminder when the appointment moves, and schedules one for the new start", async () => {
    const { kit, clock } = await reminderKit();
    const phone = "+12025550152";
    const patientId = await kit.addPatient(phone);
    const start = startIn(30, clock.now());
    const appt = await kit.book(patientId, start);
    const first = await kit.delivery("appointment-reminder", appt.id);
    await kit.delayed(first.deliveryId);

    const moved = new Date(start.getTime() + 2 * hour);
    await kit.update({ ...appt, start: moved.toISOString(), end: new Date(moved.getTime() + 30 * 60_000).toISOString() });

    const second = await kit.delivery("appointment-reminder", appt.id, (r) => r.deliveryId !== first.deliveryId);
    const old = await kit.until(first.deliveryId, "the first reminder superseded", (r) => r.state === "not-done");
    expect(old.reason).toBe("superseded");
    expect(await kit.service.queues.byName.delivery.getJob(first.deliveryId)).toBeUndefined();
    await kit.communication(first.deliveryId, (c) => c.status === "not-done");

    const sendAt = new Date(moved.getTime() - leadHours * hour);
    expect(second.scheduledFor).toBe(sendAt.toISOString());
    const job = await kit.delayed(second.deliveryId);
    expect(job.delay).toBe(sendAt.getTime() - clock.now().getTime());
    // Both confirmations out first, so the reminder does not meet the recipient gate they take.
    await waitFor("two confirmations", () => kit.graph.records.filter((m) => m.template === "appointment_confirmation_v1").length === 2);

    clock.set(new Date(sendAt.getTime() + 1_000));
    await job.promote();
    await kit.until(second.deliveryId, "the new reminder accepted", (r) => r.state === "accepted");
    expect(remindersSentTo(kit, phone)).toBe(1);
    // A confirmation for the booking and one for the new time.
    expect(kit.graph.records.filter((m) => m.template === "appointment_confirmation_v1")).toHaveLength(2);
  });

  it("removes the pending reminder when the appointment is cancelled, with a not-done record", async () => {
    const { kit, clock } = await reminderKit();
    const phone = "+12025550153";
    const patientId = await kit.addPatient(phone);
    const appt = await kit.book(patientId, startIn(30, clock.now()));
    const reminder = await kit.delivery("appointment-reminder", appt.id);
    await kit.delayed(reminder.deliveryId);

    await kit.update({ ...appt, status: "cancelled" });
    const record = await kit.until(reminder.deliveryId, "the reminder cancelled", (r) => r.state === "not-done");
    expect(record.reason).toBe("no-longer-applies");
    expect(await kit.service.queues.byName.delivery.getJob(reminder.deliveryId)).toBeUndefined();
    await kit.communication(reminder.deliveryId, (c) => c.status === "not-done");
    expect(remindersSentTo(kit, phone)).toBe(0);
  });

  it("does not send a reminder late: one that runs after the appointment started is not-done past-due", async () => {
    const { kit, clock } = await reminderKit();
    const phone = "+12025550154";
    const patientId = await kit.addPatient(phone);
    const start = startIn(30, clock.now());
    const appt = await kit.book(patientId, start);
    const reminder = await kit.delivery("appointment-reminder", appt.id);
    const job = await kit.delayed(reminder.deliveryId);

    // The workers were down past the appointment (or the sender was halted that long).
    clock.set(new Date(start.getTime() + 5 * 60_000));
    await job.promote();
    const record = await kit.until(reminder.deliveryId, "the reminder not-done", (r) => r.state === "not-done");
    expect(record.reason).toBe("past-due");
    await kit.communication(reminder.deliveryId, (c) => c.status === "not-done");
    expect(remindersSentTo(kit, phone)).toBe(0);
  });

  it("schedules no reminder for an appointment booked inside the lead time (the confirmation covers it)", async () => {
    const { kit, clock } = await reminderKit();
    const phone = "+12025550155";
    const patientId = await kit.addPatient(phone);
    const appt = await kit.book(patientId, startIn(10, clock.now()));
    await kit.delivery("appointment-booked", appt.id, (r) => r.state === "accepted");
    await waitFor("the intake queue drained", async () => {
      const c = await kit.service.queues.byName.intake.getJobCounts("waiting", "active", "delayed");
      return (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) === 0;
    });
    const all = await Promise.all((await kit.ledger.recent(100)).map((id) => kit.ledger.get(id)));
    expect(all.filter((r) => r?.ruleId === "appointment-reminder")).toEqual([]);
    expect(remindersSentTo(kit, phone)).toBe(0);
  });
});
