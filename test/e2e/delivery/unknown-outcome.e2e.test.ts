import { describe, expect, it } from "vitest";
import { manualClock } from "../../../src/shared/clock.js";
import type { FaultBehaviour } from "../../fakes/graph-api.server.js";
import { waitFor } from "../../support/wait-for.js";
import { requestsTo, startDeliveryService, startIn } from "./delivery-kit.js";

const windowMs = 10 * 60_000;

describe("a send whose outcome is unknown (whatsapp-cloud-api.md §10.4)", () => {
  it("retries a proxy's bodyless 503 at once (Meta never processed it) and sends once", async () => {
    const kit = await startDeliveryService();
    const phone = "+12025550164";
    kit.graph.inject(phone, { kind: "bare-status", httpStatus: 503 }, 1);
    const patientId = await kit.addPatient(phone);
    const appt = await kit.book(patientId, startIn(30));
    const record = await kit.delivery("appointment-booked", appt.id, (r) => r.state === "accepted");
    expect(requestsTo(kit.graph, phone)).toEqual([503, 200]);
    expect(kit.graph.sentTo(phone)).toBe(1);
    expect(record.inFlightSince).toBeUndefined();
  });

  it.each<{ label: string; fault: FaultBehaviour }>([
    { label: "the connection is reset after Meta read the request", fault: { kind: "reset" } },
  ])("is not resent blindly when $label; a status webhook with the delivery id settles it", async ({ fault }) => {
    const kit = await startDeliveryService();
    const phone = "+12025550161";
    kit.graph.inject(phone, fault, 1);
    const patientId = await kit.addPatient(phone);
    const appt = await kit.book(patientId, startIn(30));
    const { deliveryId } = await kit.delivery("appointment-booked", appt.id);

    // The retry finds the attempt still in flight and waits for a webhook instead of sending.
    const job = await kit.delayed(deliveryId, (r) => r.inFlightSince !== undefined, 60_000);
    const waiting = await kit.ledger.get(deliveryId);
    expect(waiting?.state).toBe("queued");
    expect(((await (await kit.admin("/admin/unknown-outcomes")).json()) as { count: number }).count).toBe(1);
    expect(job.delay).toBeGreaterThan(windowMs - 60_000);
    expect(job.delay).toBeLessThanOrEqual(windowMs);
    expect(requestsTo(kit.graph, phone)).toHaveLength(1);

    // What Meta would report for the message it did accept: the callback data names our delivery,
    // through an opaque token that carries nothing of the appointment.
    const wamid = kit.graph.records[0]!.wamid;
    expect(kit.graph.records[0]!.callbackData).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(kit.graph.records[0]!.callbackData).not.toContain(appt.id);
    const res = await kit.postStatuses([{ wamid, status: "sent", timestamp: Math.floor(Date.now() / 1000), callbackData: kit.graph.records[0]!.callbackData!, recipientId: phone.slice(1) }]);
    expect(res.status).toBe(200);
    const settled = await kit.until(deliveryId, "the status applied", (r) => r.state === "sent");
    expect(settled.wamid).toBe(wamid);
    expect(settled.inFlightSince).toBeUndefined();
    // The status decided it: no longer listed.
    await waitFor("the unknown outcome decided", async () => ((await (await kit.admin("/admin/unknown-outcomes")).json()) as { count: number }).count === 0);

    await job.promote();
    await waitFor("the send job completed", async () => (await job.getState()) === "completed");
    expect(requestsTo(kit.graph, phone)).toHaveLength(1);
    expect((await kit.deliveryJob(deliveryId)).returnvalue).toBe("already sent");
    const communication = await kit.communication(deliveryId, (c) => c.status === "in-progress" || c.status === "completed");
    expect(communication.identifier?.some((i) => i.value === wamid)).toBe(true);
  });

  it("lists the send in doubt, then sends the notification again when no webhook comes within the window", async () => {
    const clock = manualClock(new Date());
    const kit = await startDeliveryService({ clock, config: { ops: { unknownOutcomesDegraded: 0 } } });
    const phone = "+12025550162";
    // A 2xx without a message id: the outcome is unknown to us, and the fake recorded nothing (Meta
    // sent nothing, so no status webhook will come).
    kit.graph.inject(phone, { kind: "bare-status", httpStatus: 200 }, 1);
    const patientId = await kit.addPatient(phone);
    const appt = await kit.book(patientId, startIn(30, clock.now()));
    const { deliveryId } = await kit.delivery("appointment-booked", appt.id);
    const job = await kit.delayed(deliveryId, (r) => r.inFlightSince !== undefined, 60_000);
    const inFlight = (await kit.ledger.get(deliveryId))!.inFlightSince!;

    // Visible while it waits: listed for replay (ids and times only) and a /readyz reason.
    const listed = (await (await kit.admin("/admin/unknown-outcomes")).json()) as { count: number; entries: unknown[] };
    expect(listed).toEqual({ count: 1, entries: [{ deliveryId, since: inFlight, attempt: 1 }] });
    const ready = (await (await kit.admin("/readyz")).json()) as { status: string; reasons: string[] };
    expect(ready.status).toBe("degraded");
    expect(ready.reasons).toContain("1 send(s) with an unknown outcome (limit 0)");
    expect(kit.service.logs.lines.some((l) => l.includes('"event":"unknown-outcome"') && l.includes(deliveryId))).toBe(true);

    clock.advance(windowMs + 1_000);
    await job.promote();
    const record = await kit.until(deliveryId, "the message accepted on the resend", (r) => r.state === "accepted");
    expect(record.inFlightSince).toBeUndefined();
    expect(requestsTo(kit.graph, phone)).toEqual([200, 200]);
    expect(kit.graph.sentTo(phone)).toBe(1);
    expect(await (await kit.admin("/admin/unknown-outcomes")).json()).toEqual({ count: 0, entries: [] });
    const metrics = await (await kit.admin("/metrics")).text();
    expect(metrics).toContain('fhir_notify_unknown_outcomes_total{event="opened"} 1');
    expect(metrics).toContain('fhir_notify_unknown_outcomes_total{event="resent"} 1');
  });

  it("sends a reminder again when no webhook comes within the window, like any message", async () => {
    const clock = manualClock(new Date());
    const kit = await startDeliveryService({ clock });
    const phone = "+12025550163";
    const patientId = await kit.addPatient(phone);
    const start = startIn(30, clock.now());
    const appt = await kit.book(patientId, start);
    const reminder = await kit.delivery("appointment-reminder", appt.id);
    const scheduled = await kit.delayed(reminder.deliveryId);
    // The confirmation goes first (and takes the recipient gate); only the reminder meets the fault.
    await kit.delivery("appointment-booked", appt.id, (r) => r.state === "accepted");

    kit.graph.inject(phone, { kind: "reset" }, 1);
    clock.set(new Date(start.getTime() - 24 * 3_600_000 + 1_000));
    await scheduled.promote();
    const job = await kit.delayed(reminder.deliveryId, (r) => r.inFlightSince !== undefined, 60_000);
    clock.advance(windowMs + 1_000);
    await job.promote();
    await kit.until(reminder.deliveryId, "the reminder accepted", (r) => r.state === "accepted");
    // Both sends carry the same opaque token: a status for either finds this delivery.
    const [first, second] = kit.graph.records.filter((m) => m.to === phone.slice(1) && m.template.startsWith("appointment_reminder"));
    expect(second?.callbackData).toBe(first?.callbackData);
    expect(await kit.sentFor(reminder.deliveryId)).toBe(first);
  });
});
