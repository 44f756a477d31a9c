import { describe, expect, it } from "vitest";
import type { AppointmentResponse, Communication, Consent } from "fhir/r4";
import type { FakeGraphApi } from "../../fakes/graph-api.server.js";
import { buildInboundWebhook } from "../../fakes/graph-api.server.js";
import { waitFor } from "../../support/wait-for.js";
import {
  bookedAppointment,
  byIdentifier,
  expectValidR4,
  inboundIdSystem,
  notDoneReasonSystem,
  post,
  postStatuses,
  postWebhook,
  startLiveService,
  waitForCommunication,
  waitUntilIdle,
  type Service,
} from "./audit-harness.js";

/*
 * 2026: users who adopt a WhatsApp username may reach us with only a business-scoped user id
 * (BSUID, `user_id`) and no phone number (whatsapp-cloud-api.md §6.5). These payloads carry no
 * `from` and no `wa_id`.
 */
const bsuid = "US.13491208655302741918";
const seconds = (offset = 0) => String(Math.floor(Date.now() / 1000) + offset);

/** An inbound text from a username user: only the BSUID identifies them. */
function usernameText(service: Service, graph: FakeGraphApi, id: string, body: string, timestamp = seconds()) {
  return postWebhook(
    service,
    buildInboundWebhook({
      phoneNumberId: graph.phoneNumberId,
      contacts: [{ profile: { name: "Alex", username: "@alex.r" }, user_id: bsuid }],
      messages: [{ id, timestamp, type: "text", text: { body } }],
    }),
  );
}

/** Book, wait until the confirmation went out; returns the message Meta accepted. */
async function confirmationSent(service: Service, graph: FakeGraphApi) {
  const appointment = await post(service, bookedAppointment(service.sandboxSeed!));
  const message = await waitFor("the confirmation at the Graph API", () => graph.records[0]);
  await waitForCommunication(service, `Appointment/${appointment.id}`, "the confirmation's Communication", (c) => c.status === "in-progress");
  await waitUntilIdle(service);
  return { message, appointment };
}

/** Meta's delivered status for our message, naming the recipient by BSUID only (no recipient_id). */
async function deliveredToBsuid(service: Service, graph: FakeGraphApi, message: { wamid: string; callbackData?: string | undefined }) {
  const callback = message.callbackData !== undefined ? { callbackData: message.callbackData } : {};
  await postStatuses(service, graph.phoneNumberId, [{ wamid: message.wamid, status: "delivered", timestamp: Number(seconds()), userId: bsuid, ...callback }]);
  await waitUntilIdle(service);
}

async function nextBookingBlocked(service: Service): Promise<Communication> {
  const second = await post(service, bookedAppointment(service.sandboxSeed!, "Dermatology check", 21));
  return waitForCommunication(service, `Appointment/${second.id}`, "the blocked Communication", (c) => c.status === "not-done");
}

describe("business-scoped user ids (usernames)", () => {
  it("honours a STOP that carries only a BSUID, once a status linked it to the number, and audits it against the right patient", async () => {
    const { service, graph } = await startLiveService();
    const { message } = await confirmationSent(service, graph);
    await deliveredToBsuid(service, graph, message);

    const stopId = "wamid.HBgLMzMzMzMzMzMzMzMVAgASGBQ1U1RPUDFCU1VJRDAwMDAwMDAwAA==";
    await usernameText(service, graph, stopId, "STOP");
    await waitUntilIdle(service);

    const inbound = await byIdentifier<Communication>(service, "Communication", inboundIdSystem, stopId);
    expect(inbound).toHaveLength(1);
    expect(inbound[0]).toMatchObject({ subject: { reference: `Patient/${service.sandboxSeed!.patientId}` }, payload: [{ contentString: "STOP" }] });
    expectValidR4(inbound[0]!);
    const blocked = await nextBookingBlocked(service);
    expect(blocked.statusReason?.coding).toEqual([{ system: notDoneReasonSystem, code: "patient-objection" }]);
    expect(graph.sentTo(message.to)).toBe(1);
    // Neither the BSUID nor the number is ever logged in clear.
    expect(service.logs.text()).not.toContain(bsuid);
    expect(service.logs.text()).not.toContain(message.to);
  });

  it("never drops a BSUID-only STOP that arrives before anything links the BSUID: the link, learnt later, carries it to the number", async () => {
    const { service, graph } = await startLiveService();
    const { message } = await confirmationSent(service, graph);
    // Meta's statuses can lag the patient's reply.
    await usernameText(service, graph, "wamid.HBgLMzMzMzMzMzMzMzMVAgASGBQ1U1RPUDJCU1VJRDAwMDAwMDAwAA==", "Baja");
    await waitUntilIdle(service);
    expect(service.logs.lines.some((l) => l.includes('"event":"opt-out"'))).toBe(true);

    await deliveredToBsuid(service, graph, message);
    await nextBookingBlocked(service);
    expect(graph.sentTo(message.to)).toBe(1);
  });

  it("records a quick-reply tap from a user who has only a BSUID against the delivery it answers", async () => {
    const { service, graph } = await startLiveService({ delivery: { rateLimits: { perRecipientSeconds: 0.1 } } });
    const appointment = await post(service, bookedAppointment(service.sandboxSeed!, "Oncology follow-up", 30));
    const reminderJob = await waitFor("the delayed reminder job", async () => (await service.queues.byName.delivery.getJobs(["delayed"])).find((j) => j.id?.includes("appointment-reminder")));
    await reminderJob.promote();
    const reminder = await waitFor("the reminder at the Graph API", () => graph.records.find((m) => m.template === "appointment_reminder_v1"));
    await waitUntilIdle(service);

    const tapId = "wamid.HBgLMzMzMzMzMzMzMzMVAgASGBQzMzMzMzMzMzMzMzMzMzMzMzMzMwA=";
    await postWebhook(
      service,
      buildInboundWebhook({
        phoneNumberId: graph.phoneNumberId,
        contacts: [{ profile: { name: "Alex", username: "@alex.r" }, user_id: bsuid }],
        messages: [{ context: { from: "15550001111", id: reminder.wamid }, user_id: bsuid, id: tapId, timestamp: seconds(), type: "button", button: { payload: reminder.buttons[0]!.value, text: "Confirm" } }],
      }),
    );
    await waitUntilIdle(service);
    const responses = await byIdentifier<AppointmentResponse>(service, "AppointmentResponse", inboundIdSystem, tapId);
    expect(responses).toHaveLength(1);
    expect(responses[0]).toMatchObject({ appointment: { reference: `Appointment/${appointment.id}` }, participantStatus: "accepted" });
  });
});

describe("re-opt-in: START after STOP", () => {
  it("restores messaging, ends the STOP's deny Consent and records a permit Consent; the patient's latest word wins over a late redelivery", async () => {
    const { service, graph } = await startLiveService({ mapping: { consent: { onOptOut: "record-deny" } } });
    const seed = service.sandboxSeed!;
    const { message } = await confirmationSent(service, graph);
    await deliveredToBsuid(service, graph, message);

    const stopId = "wamid.HBgLMzMzMzMzMzMzMzMVAgASGBQ1U1RPUDNCU1VJRDAwMDAwMDAwAA==";
    const startId = "wamid.HBgLMzMzMzMzMzMzMzMVAgASGBQ1U1RBUlRCU1VJRDAwMDAwMDAwAA==";
    const stopAt = seconds(-60);
    await usernameText(service, graph, stopId, "STOP", stopAt);
    await waitUntilIdle(service);
    await nextBookingBlocked(service);

    // START by number this time: both identities are linked, so either one counts.
    await postWebhook(
      service,
      buildInboundWebhook({ phoneNumberId: graph.phoneNumberId, contacts: [{ profile: { name: "Alex" }, wa_id: message.to, user_id: bsuid }], messages: [{ from: message.to, id: startId, timestamp: seconds(), type: "text", text: { body: "Start" } }] }),
    );
    await waitUntilIdle(service);

    const [deny] = await byIdentifier<Consent>(service, "Consent", inboundIdSystem, stopId);
    expect(deny?.provision).toMatchObject({ type: "deny", period: { end: expect.any(String) as string } });
    const [permit] = await byIdentifier<Consent>(service, "Consent", inboundIdSystem, startId);
    expect(permit).toMatchObject({ status: "active", patient: { reference: `Patient/${seed.patientId}` }, provision: { type: "permit" } });
    expectValidR4(permit!);
    expect(await byIdentifier<Communication>(service, "Communication", inboundIdSystem, startId)).toMatchObject([{ payload: [{ contentString: "START" }] }]);

    // Meta redelivers the old STOP after the START: it changes nothing.
    await usernameText(service, graph, stopId, "STOP", stopAt);
    await waitUntilIdle(service);

    const third = await post(service, bookedAppointment(seed, "Eye check", 22));
    await waitForCommunication(service, `Appointment/${third.id}`, "the third booking's Communication", (c) => c.status === "in-progress");
    expect(graph.sentTo(message.to)).toBe(2);
  });
});
