import { describe, expect, it } from "vitest";
import type { AppointmentResponse, Communication, Consent, Task } from "fhir/r4";
import type { AcceptedMessage, FakeGraphApi } from "../../fakes/graph-api.server.js";
import { waitFor } from "../../support/wait-for.js";
import {
  bookedAppointment,
  byIdentifier,
  communicationsAbout,
  expectValidR4,
  inboundIdSystem,
  notDoneReasonSystem,
  notificationKeySystem,
  post,
  postInbound,
  startLiveService,
  waitForCommunication,
  waitUntilIdle,
  type Service,
} from "./audit-harness.js";

const businessNumber = "15550001111";
const now = () => String(Math.floor(Date.now() / 1000));

/** Book 30 h ahead, then send the reminder (with its Confirm / Reschedule buttons) right away. */
async function sentReminder(service: Service, messages: AcceptedMessage[]): Promise<{ message: AcceptedMessage; outbound: Communication; about: string }> {
  const appointment = await post(service, bookedAppointment(service.sandboxSeed!, "Oncology follow-up", 30));
  const about = `Appointment/${appointment.id}`;
  // The reminder is due 24 h before the start; bring its delayed send job forward.
  const reminderJob = await waitFor("the delayed reminder job", async () => (await service.queues.byName.delivery.getJobs(["delayed"])).find((j) => j.id?.includes("appointment-reminder")));
  await reminderJob.promote();
  const message = await waitFor("the reminder at the Graph API", () => messages.find((m) => m.template === "appointment_reminder_v1"));
  const outbound = await waitFor("the reminder's in-progress Communication", async () =>
    (await communicationsAbout(service, about)).find((c) => c.topic?.text === "appointment_reminder_v1" && c.status === "in-progress"),
  );
  await waitUntilIdle(service);
  return { message, outbound, about };
}

function buttonReply(message: AcceptedMessage, id: string, index: number, label: string) {
  return {
    context: { from: businessNumber, id: message.wamid },
    from: message.to,
    id,
    timestamp: now(),
    type: "button",
    button: { payload: message.buttons[index]!.value, text: label },
  };
}

/** Book, wait until the confirmation went out and is audited, then the patient texts `word`, delivered twice by Meta. */
async function confirmedThenStop(service: Service, graph: FakeGraphApi, word: string, stopId: string) {
  const first = await post(service, bookedAppointment(service.sandboxSeed!));
  const message = await waitFor("the confirmation at the Graph API", () => graph.records[0]);
  await waitForCommunication(service, `Appointment/${first.id}`, "the confirmation's Communication", (c) => c.status === "in-progress");
  await waitUntilIdle(service);
  const stop = { from: message.to, id: stopId, timestamp: now(), type: "text", text: { body: word } };
  await postInbound(service, graph.phoneNumberId, stop);
  await postInbound(service, graph.phoneNumberId, stop);
  await waitUntilIdle(service);
  return { message, stopId, stop };
}

describe("patient replies on WhatsApp, written back to FHIR", () => {
  it("records Confirm as an accepted AppointmentResponse and Reschedule as a Task, each with an inbound Communication, once however often Meta repeats them", async () => {
    // The reminder follows the confirmation at once; Meta's 6 s pair rate would only slow the test.
    const { service, graph } = await startLiveService({ delivery: { rateLimits: { perRecipientSeconds: 0.1 } } });
    const { message, outbound, about } = await sentReminder(service, graph.records);
    expect(message.buttons.map((b) => b.value.split(":")[1])).toEqual(["CONFIRM", "RESCHEDULE"]);

    const confirmId = "wamid.HBgLMTIwMjU1NTAxMjMVAgASGBQzRUIwQzJENUU3RjkxMUI0NTY3QQA=";
    const rescheduleId = "wamid.HBgLMTIwMjU1NTAxMjMVAgASGBQ5QTFDM0U1RjcwOTJCNEQ2RjhBMQA=";
    const confirm = buttonReply(message, confirmId, 0, "Confirm");
    await postInbound(service, graph.phoneNumberId, confirm);
    await postInbound(service, graph.phoneNumberId, confirm);
    await waitUntilIdle(service);
    await postInbound(service, graph.phoneNumberId, confirm);
    await postInbound(service, graph.phoneNumberId, buttonReply(message, rescheduleId, 1, "Reschedule"));
    await waitUntilIdle(service);

    const responses = await byIdentifier<AppointmentResponse>(service, "AppointmentResponse", inboundIdSystem, confirmId);
    expect(responses).toHaveLength(1);
    expect(responses[0]).toMatchObject({ appointment: { reference: about }, actor: { reference: `Patient/${service.sandboxSeed!.patientId}` }, participantStatus: "accepted" });
    expectValidR4(responses[0]!);
    expect(await byIdentifier(service, "AppointmentResponse", inboundIdSystem, rescheduleId)).toHaveLength(0);

    const tasks = await byIdentifier<Task>(service, "Task", inboundIdSystem, rescheduleId);
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({ status: "requested", intent: "order", focus: { reference: about }, for: { reference: `Patient/${service.sandboxSeed!.patientId}` } });
    expectValidR4(tasks[0]!);

    for (const [id, token] of [[confirmId, "CONFIRM"], [rescheduleId, "RESCHEDULE"]] as const) {
      const inbound = await byIdentifier<Communication>(service, "Communication", inboundIdSystem, id);
      expect(inbound, token).toHaveLength(1);
      expect(inbound[0]).toMatchObject({
        status: "completed",
        inResponseTo: [{ reference: `Communication/${outbound.id!}` }],
        subject: { reference: `Patient/${service.sandboxSeed!.patientId}` },
        sender: { reference: `Patient/${service.sandboxSeed!.patientId}` },
        about: [{ reference: about }],
        payload: [{ contentString: token }],
      });
      expectValidR4(inbound[0]!);
    }
    // The outbound messages are still one Communication each.
    const outboundOnly = (await communicationsAbout(service, about)).filter((c) => c.identifier?.[0]?.system === notificationKeySystem);
    expect(outboundOnly).toHaveLength(2);
    for (const c of outboundOnly) expectValidR4(c);
  });

  it("records STOP as an opt-out with an inbound Communication, and the next notification is not sent", async () => {
    const { service, graph } = await startLiveService();
    const seed = service.sandboxSeed!;
    const { message, stopId, stop } = await confirmedThenStop(service, graph, "Stop", "wamid.HBgLMTIwMjU1NTAxMjMVAgASGBQ0RjE3QkJBMEQ1MjYyQzM1RjcwRQA=");
    await postInbound(service, graph.phoneNumberId, stop);
    await waitUntilIdle(service);

    const inbound = await byIdentifier<Communication>(service, "Communication", inboundIdSystem, stopId);
    expect(inbound).toHaveLength(1);
    expect(inbound[0]).toMatchObject({ status: "completed", subject: { reference: `Patient/${seed.patientId}` }, payload: [{ contentString: "STOP" }] });
    expect(JSON.stringify(inbound[0])).not.toContain(message.to);
    expectValidR4(inbound[0]!);

    const second = await post(service, bookedAppointment(seed, "Dermatology check", 21));
    const blocked = await waitForCommunication(service, `Appointment/${second.id}`, "the blocked Communication", (c) => c.status === "not-done");
    expect(blocked.statusReason?.coding).toEqual([{ system: notDoneReasonSystem, code: "patient-objection" }]);
    expect(graph.sentTo(message.to)).toBe(1);
  });

  it("also records STOP as a deny Consent when the site asks for it, once however often Meta repeats it", async () => {
    const { service, graph } = await startLiveService({ mapping: { consent: { onOptOut: "record-deny" } } });
    const seed = service.sandboxSeed!;
    const { message, stopId } = await confirmedThenStop(service, graph, "BAJA", "wamid.HBgLMTIwMjU1NTAxMjMVAgASGBQ3QUY5RTFCMkM0RDZFOEYwQTJCNAA=");

    const consents = await byIdentifier<Consent>(service, "Consent", inboundIdSystem, stopId);
    expect(consents).toHaveLength(1);
    expect(consents[0]).toMatchObject({
      status: "active",
      patient: { reference: `Patient/${seed.patientId}` },
      category: [{ coding: [{ system: "https://fhir-notify.dev/fhir/CodeSystem/consent-category", code: "whatsapp-logistics" }] }],
      provision: { type: "deny" },
    });
    expect(JSON.stringify(consents[0])).not.toContain(message.to);
    expectValidR4(consents[0]!);

    // The withdrawal is what the consent check now finds: the next booking is not sent.
    const second = await post(service, bookedAppointment(seed, "Dermatology check", 21));
    await waitForCommunication(service, `Appointment/${second.id}`, "the blocked Communication", (c) => c.status === "not-done");
    expect(graph.sentTo(message.to)).toBe(1);
  });
});
