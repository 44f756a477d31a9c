import { fc, test } from "@fast-check/vitest";
import type { Communication } from "fhir/r4";
import { describe, expect, it } from "vitest";
import { auditConfigSchema } from "../../src/audit/audit.config.js";
import { buildCommunication, buildInboundCommunication, mergeForUpdate, type InboundReply } from "../../src/audit/communication.builder.js";
import type { DeliveryRecord, DeliveryState } from "../../src/delivery/delivery-record.js";
import type { NotDoneReason } from "../../src/shared/not-done-reason.js";
import { nextState, toCommunicationStatus } from "../../src/delivery/delivery-state.js";
import { r4Errors } from "./r4-validation.js";
import { queuedReminder } from "../fixtures/delivery-record.js";

const opts = auditConfigSchema.parse({});
const base = "https://fhir-notify.dev/fhir/StructureDefinition/";
const renderedText = "Hello Ana, reminder: your appointment is on 12/03 at 08:30 at Outpatient Clinic B.";
const wamid = "wamid.HBgNNTUxMTkwMDAwMDAwMRUCABEYEjk4QkQ2RjM1QTc1NzQ5RkI4AA==";

const allStates: readonly DeliveryState[] = ["queued", "dispatching", "unknown", "accepted", "held", "sent", "delivered", "read", "failed", "not-done", "expired"];

const reminder = queuedReminder;

/** The same reminder after WhatsApp accepted it and the webhooks below arrived. */
function sentReminder(state: DeliveryState, overrides: Partial<DeliveryRecord> = {}): DeliveryRecord {
  return reminder({
    state,
    wamid,
    renderedText,
    sentAt: "2025-03-04T09:15:07.000Z",
    history: [
      { state: "accepted", at: "2025-03-04T09:15:06.000Z" },
      { state: "sent", at: "2025-03-04T09:15:07.000Z" },
    ],
    updatedAt: "2025-03-04T09:15:07.000Z",
    ...overrides,
  });
}

const extension = (c: Communication, name: string) => c.extension?.filter((e) => e.url === `${base}${name}`) ?? [];

describe("buildCommunication", () => {
  it("describes a queued reminder as a Communication in preparation", () => {
    const c = buildCommunication(reminder(), opts);
    expect(c.status).toBe("preparation");
    expect(c.identifier).toEqual([{ system: "https://fhir-notify.dev/sid/notification-key", value: "dlv_hapi-main_appointment-reminder_Appointment_apt-7781_3f9a2c1e0b7d4a55" }]);
    expect(c.category).toEqual([{ coding: [{ system: "http://terminology.hl7.org/CodeSystem/communication-category", code: "reminder" }] }]);
    expect(c.priority).toBe("routine");
    expect(c.medium).toEqual([{ coding: [{ system: "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode", code: "APPWRIT" }], text: "WhatsApp" }]);
    expect(c.subject).toEqual({ reference: "Patient/pat-1001" });
    expect(c.recipient).toEqual([{ reference: "Patient/pat-1001" }]);
    expect(c.sender).toEqual({ reference: "Organization/hospital-main" });
    expect(c.topic).toEqual({ text: "appointment_reminder" });
    expect(c.about).toEqual([{ reference: "Appointment/apt-7781" }]);
    expect(extension(c, "resource-version")).toEqual([{ url: `${base}resource-version`, valueId: "4" }]);
    expect(extension(c, "rule-id")).toEqual([{ url: `${base}rule-id`, valueString: "appointment-reminder" }]);
    expect(extension(c, "rules-hash")).toEqual([{ url: `${base}rules-hash`, valueString: "9c1d2e3f4a5b6c7d" }]);
    expect(c).not.toHaveProperty("sent");
    expect(c).not.toHaveProperty("received");
    expect(c).not.toHaveProperty("payload");
    expect(c).not.toHaveProperty("statusReason");
    expect(c).not.toHaveProperty("meta");
  });

  it("adds the wamid, the sent time and the text that was sent once WhatsApp accepted the message", () => {
    const c = buildCommunication(sentReminder("sent"), opts);
    expect(c.status).toBe("in-progress");
    expect(c.identifier).toContainEqual({ system: "https://fhir-notify.dev/sid/whatsapp-message-id", value: wamid });
    expect(c.sent).toBe("2025-03-04T09:15:07.000Z");
    expect(c.payload).toEqual([{ contentString: renderedText }]);
  });

  it("marks a delivered and read message completed, with the read time in an extension", () => {
    const c = buildCommunication(sentReminder("read", { deliveredAt: "2025-03-04T09:15:11.000Z", readAt: "2025-03-04T09:40:00.000Z" }), opts);
    expect(c.status).toBe("completed");
    expect(c.received).toBe("2025-03-04T09:15:11.000Z");
    expect(extension(c, "read-at")).toEqual([{ url: `${base}read-at`, valueDateTime: "2025-03-04T09:40:00.000Z" }]);
  });

  it("uses the read time as received when delivered was never reported", () => {
    const c = buildCommunication(sentReminder("read", { readAt: "2025-03-04T09:40:00.000Z" }), opts);
    expect(c.received).toBe("2025-03-04T09:40:00.000Z");
  });

  it("writes one delivery-event extension per ledger event, with the error code when there is one", () => {
    const record = sentReminder("failed", {
      failedAt: "2025-03-04T09:15:09.000Z",
      vendorCode: 131026,
      history: [
        { state: "accepted", at: "2025-03-04T09:15:06.000Z" },
        { state: "failed", at: "2025-03-04T09:15:09.000Z", code: 131026 },
      ],
    });
    expect(extension(buildCommunication(record, opts), "delivery-event")).toEqual([
      {
        url: `${base}delivery-event`,
        extension: [
          { url: "state", valueCode: "accepted" },
          { url: "at", valueDateTime: "2025-03-04T09:15:06.000Z" },
        ],
      },
      {
        url: `${base}delivery-event`,
        extension: [
          { url: "state", valueCode: "failed" },
          { url: "at", valueDateTime: "2025-03-04T09:15:09.000Z" },
          { url: "code", valueInteger: 131026 },
        ],
      },
    ]);
  });

  it("reports an undeliverable message as not-done, recipient-unavailable, with the code in a note", () => {
    const c = buildCommunication(sentReminder("failed", { reason: "whatsapp-permanent", vendorCode: 131026, failedAt: "2025-03-04T09:15:09.000Z" }), opts);
    expect(c.status).toBe("not-done");
    expect(c.statusReason).toEqual({
      coding: [{ system: "http://terminology.hl7.org/CodeSystem/communication-not-done-reason", code: "recipient-unavailable" }],
      text: "WhatsApp reported the message as failed",
    });
    expect(c.note).toEqual([{ text: "WhatsApp error code 131026" }]);
  });

  it("reports a template error from WhatsApp as a system error", () => {
    const c = buildCommunication(reminder({ state: "not-done", reason: "whatsapp-permanent", vendorCode: 132001 }), opts);
    expect(c.statusReason?.coding?.[0]?.code).toBe("system-error");
  });

  it("reads a failure without a recorded reason as a WhatsApp failure, and expiry as recipient-unavailable", () => {
    expect(buildCommunication(sentReminder("failed", { vendorCode: 131026 }), opts).statusReason?.coding?.[0]?.code).toBe("recipient-unavailable");
    expect(buildCommunication(sentReminder("expired"), opts).statusReason).toEqual({
      coding: [{ system: "http://terminology.hl7.org/CodeSystem/communication-not-done-reason", code: "recipient-unavailable" }],
      text: "WhatsApp did not confirm delivery before the message expired",
    });
  });

  it("names the safe slot that had no value in a missing-value reason, and nothing that is not a slot name", () => {
    expect(buildCommunication(reminder({ state: "not-done", reason: "missing-value", missingSlot: "locationLabel" }), opts).statusReason?.text).toBe(
      "A value the message needs is not on record or not configured: locationLabel",
    );
    expect(buildCommunication(reminder({ state: "not-done", reason: "missing-value", missingSlot: "Jordan Rivera" }), opts).statusReason?.text).toBe(
      "A value the message needs is not on record or not configured",
    );
  });

  it("says which slot and which guard rule blocked a phi-guard message, by name only", () => {
    const blocked = (phiGuard: { slot: string; rule: string; element?: string }) =>
      buildCommunication(reminder({ state: "not-done", reason: "phi-guard", phiGuard }), opts).statusReason?.text;
    expect(blocked({ slot: "locationLabel", rule: "clinical-text", element: "Appointment.serviceType" })).toBe(
      "The message was blocked by the protected-information guard: slot locationLabel, guard rule clinical-text, element Appointment.serviceType",
    );
    expect(blocked({ slot: "patientFirstName", rule: "clinical-acronym" })).toBe("The message was blocked by the protected-information guard: slot patientFirstName, guard rule clinical-acronym");
    // Whatever else a ledger field holds is never copied into the record.
    expect(blocked({ slot: "locationLabel", rule: "clinical-text", element: "Oncology Day Unit" })).toBe(
      "The message was blocked by the protected-information guard: slot locationLabel, guard rule clinical-text",
    );
    expect(blocked({ slot: "Jordan Rivera", rule: "clinical-text" })).toBe("The message was blocked by the protected-information guard");
    expect(blocked({ slot: "locationLabel", rule: "HIV clinic" })).toBe("The message was blocked by the protected-information guard");
  });

  it("maps every not-done reason to a communication-not-done-reason code with a fixed text", () => {
    const expected: Record<NotDoneReason, string> = {
      "no-consent": "patient-objection",
      "opted-out": "patient-objection",
      "no-mobile-number": "invalid-phone-number",
      "invalid-phone-number": "invalid-phone-number",
      "no-template-for-language": "system-error",
      "phi-guard": "system-error",
      "missing-value": "system-error",
      "patient-inactive": "unknown",
      "no-patient": "unknown",
      "resource-gone": "unknown",
      "no-longer-applies": "unknown",
      superseded: "unknown",
      "past-due": "unknown",
      "whatsapp-permanent": "system-error",
      expired: "recipient-unavailable",
      "sender-halted": "system-error",
      "system-error": "system-error",
      "template-held": "system-error",
      answered: "unknown",
    };
    const texts = new Set<string>();
    for (const [reason, code] of Object.entries(expected) as [NotDoneReason, string][]) {
      const c = buildCommunication(reminder({ state: "not-done", reason, reasonDetail: "free text from somewhere" }), opts);
      expect(c.statusReason?.coding).toEqual([{ system: "http://terminology.hl7.org/CodeSystem/communication-not-done-reason", code }]);
      expect(c.statusReason?.text).not.toBe("free text from somewhere");
      texts.add(c.statusReason?.text ?? "");
    }
    expect(texts.size).toBe(Object.keys(expected).length);
  });

  it("never includes the rendered text when the message did not reach WhatsApp", () => {
    for (const state of ["queued", "dispatching", "unknown", "not-done", "failed"] as const) {
      const c = buildCommunication(reminder({ state, renderedText, reason: "opted-out" }), opts);
      expect(c).not.toHaveProperty("payload");
    }
  });

  it("never fills reasonCode or reasonReference, in any state", () => {
    for (const state of allStates) {
      const c = buildCommunication(sentReminder(state), opts);
      expect(c).not.toHaveProperty("reasonCode");
      expect(c).not.toHaveProperty("reasonReference");
    }
  });

  it("tags a Communication written in dry-run mode", () => {
    const c = buildCommunication(sentReminder("accepted", { dryRun: true, wamid: "dryrun.0b6f6f0e-3c1b-4c56-9f3e-2f1d3a9b7c11" }), opts);
    expect(c.meta?.tag).toEqual([{ system: "https://fhir-notify.dev/fhir/CodeSystem/tag", code: "dry-run" }]);
  });

  it("uses WRITTEN for servers that reject APPWRIT", () => {
    const c = buildCommunication(reminder(), auditConfigSchema.parse({ medium: "WRITTEN" }));
    expect(c.medium?.[0]?.coding?.[0]?.code).toBe("WRITTEN");
    expect(c.medium?.[0]?.text).toBe("WhatsApp");
  });

  it("records no triggering version when the version is unknown or not an id", () => {
    expect(extension(buildCommunication(reminder({ resourceVersion: undefined }), opts), "resource-version")).toEqual([]);
    expect(extension(buildCommunication(reminder({ resourceVersion: "W/\"4\"" }), opts), "resource-version")).toEqual([]);
  });

  it("refuses a patient reference of the wrong type without echoing it", () => {
    expect(() => buildCommunication(reminder({ patientRef: "RelatedPerson/rp-77" }), opts)).toThrow(/^patientRef must be a reference to Patient$/);
  });

  it("is checked by a validator that does reject an invalid Communication", () => {
    const broken = { ...buildCommunication(reminder(), opts), sent: "yesterday", extension: [{ url: `${base}rule-id` }] };
    expect(r4Errors(broken)).toHaveLength(2);
  });

  it("builds a valid R4 Communication in every state", () => {
    const records = allStates.flatMap((state) => [
      reminder({ state }),
      sentReminder(state, {
        deliveredAt: "2025-03-04T09:15:11.000Z",
        readAt: "2025-03-04T09:40:00.000Z",
        vendorCode: 131026,
        reason: "whatsapp-permanent",
        dryRun: true,
        history: [
          { state: "accepted", at: "2025-03-04T09:15:06.000Z" },
          { state: "failed", at: "2025-03-04T09:15:09.000Z", code: 131026 },
          { state: "read", at: "2025-03-04T09:40:00.000Z" },
        ],
      }),
      reminder({ state, patientRef: undefined, senderRef: undefined, resourceVersion: undefined, category: "notification", resourceRef: "DiagnosticReport/dr-3307" }),
    ]);
    for (const record of records) expect(r4Errors(buildCommunication(record, opts))).toEqual([]);
  });
});

describe("mergeForUpdate", () => {
  /** What the server returns for our Communication: an id, a version, maybe someone else's extension. */
  function stored(c: Communication, versionId = "3"): Communication {
    return { ...c, id: "com-4410", meta: { ...c.meta, versionId, lastUpdated: "2025-03-04T09:15:12.000Z" } };
  }

  it("keeps the server's id and meta so the update can use If-Match", () => {
    const existing = stored(buildCommunication(sentReminder("sent"), opts));
    const merged = mergeForUpdate(existing, buildCommunication(sentReminder("delivered", { deliveredAt: "2025-03-04T09:15:11.000Z" }), opts));
    expect(merged.id).toBe("com-4410");
    expect(merged.meta).toEqual({ versionId: "3", lastUpdated: "2025-03-04T09:15:12.000Z" });
    expect(merged.status).toBe("completed");
    expect(merged.received).toBe("2025-03-04T09:15:11.000Z");
  });

  it("never turns a completed Communication back into in-progress", () => {
    const existing = stored(buildCommunication(sentReminder("delivered", { deliveredAt: "2025-03-04T09:15:11.000Z" }), opts));
    const merged = mergeForUpdate(existing, buildCommunication(sentReminder("sent"), opts));
    expect(merged.status).toBe("completed");
    expect(merged.received).toBe("2025-03-04T09:15:11.000Z");
  });

  it("moves not-done to completed when delivery evidence arrives, dropping the failure reason", () => {
    const existing = stored(buildCommunication(sentReminder("failed", { vendorCode: 131026 }), opts));
    const merged = mergeForUpdate(existing, buildCommunication(sentReminder("delivered", { deliveredAt: "2025-03-04T09:15:11.000Z" }), opts));
    expect(merged.status).toBe("completed");
    expect(merged).not.toHaveProperty("statusReason");
  });

  it("keeps completed when a failure arrives after delivery, and keeps the error code as a note", () => {
    const existing = stored(buildCommunication(sentReminder("delivered", { deliveredAt: "2025-03-04T09:15:11.000Z" }), opts));
    const merged = mergeForUpdate(existing, buildCommunication(sentReminder("failed", { vendorCode: 131026 }), opts));
    expect(merged.status).toBe("completed");
    expect(merged).not.toHaveProperty("statusReason");
    expect(merged.note).toEqual([{ text: "WhatsApp error code 131026" }]);
  });

  it("combines identifiers, keeps the earliest sent time and keeps extensions other systems added", () => {
    const foreign = { url: "https://hospital.example.org/fhir/StructureDefinition/reviewed-by", valueString: "audit-desk" };
    const existing = stored({ ...buildCommunication(reminder(), opts), sent: "2025-03-04T09:15:06.000Z", extension: [foreign] });
    const merged = mergeForUpdate(existing, buildCommunication(sentReminder("sent"), opts));
    expect(merged.identifier).toHaveLength(2);
    expect(merged.sent).toBe("2025-03-04T09:15:06.000Z");
    expect(merged.extension).toContainEqual(foreign);
    expect(merged.extension?.filter((e) => e.url === `${base}rule-id`)).toHaveLength(1);
  });

  it("keeps a status someone at the hospital set", () => {
    const existing = stored({ ...buildCommunication(sentReminder("sent"), opts), status: "entered-in-error" });
    expect(mergeForUpdate(existing, buildCommunication(sentReminder("read"), opts)).status).toBe("entered-in-error");
  });

  it("replaces the dead-letter on-hold status once the delivery makes progress, and keeps it until then", () => {
    const onHold = stored({ ...buildCommunication(reminder(), opts), status: "on-hold", statusReason: { text: "delivery attempts exhausted" } });
    const progressed = mergeForUpdate(onHold, buildCommunication(sentReminder("accepted"), opts));
    expect(progressed.status).toBe("in-progress");
    expect(progressed).not.toHaveProperty("statusReason");
    const waiting = mergeForUpdate(stored(buildCommunication(reminder(), opts)), { ...buildCommunication(reminder(), opts), status: "on-hold", statusReason: { text: "delivery attempts exhausted" } });
    expect(waiting.status).toBe("on-hold");
    expect(waiting.statusReason).toEqual({ text: "delivery attempts exhausted" });
  });

  test.prop([fc.constantFrom(...allStates), fc.constantFrom(...allStates)])(
    "ends at the status of the higher of the two delivery states, as a valid R4 resource",
    (onServer, built) => {
      const merged = mergeForUpdate(stored(buildCommunication(sentReminder(onServer), opts)), buildCommunication(sentReminder(built), opts));
      expect(merged.status).toBe(toCommunicationStatus(nextState(onServer, built)));
      expect(r4Errors(merged)).toEqual([]);
    },
  );
});

describe("buildInboundCommunication", () => {
  const reply: InboundReply = {
    inboundWamid: "wamid.HBgNNTUxMTkwMDAwMDAwMRUCABIYFjNFQjBDMkQ1RTdGOTExQjQ1NjdBAA==",
    action: "CONFIRM",
    sentAt: "2025-03-04T12:39:58.000Z",
    receivedAt: "2025-03-04T12:40:00.000Z",
    patientRef: "Patient/pat-1001",
    organizationRef: "Organization/hospital-main",
    outboundCommunicationRef: "Communication/com-4410",
    aboutRef: "Appointment/apt-7781",
  };

  it("records the patient's tap as a Communication from the patient in response to ours", () => {
    const c = buildInboundCommunication(reply, opts);
    expect(c.identifier).toEqual([{ system: "https://fhir-notify.dev/sid/whatsapp-inbound-id", value: reply.inboundWamid }]);
    expect(c.status).toBe("completed");
    expect(c.sender).toEqual({ reference: "Patient/pat-1001" });
    expect(c.subject).toEqual({ reference: "Patient/pat-1001" });
    expect(c.recipient).toEqual([{ reference: "Organization/hospital-main" }]);
    expect(c.inResponseTo).toEqual([{ reference: "Communication/com-4410" }]);
    expect(c.about).toEqual([{ reference: "Appointment/apt-7781" }]);
    expect(c.payload).toEqual([{ contentString: "CONFIRM" }]);
    expect(c.sent).toBe("2025-03-04T12:39:58.000Z");
    expect(c.received).toBe("2025-03-04T12:40:00.000Z");
    expect(r4Errors(c)).toEqual([]);
  });

  it("records a STOP typed without context, with nothing to respond to", () => {
    const { outboundCommunicationRef: _o, aboutRef: _a, ...stop } = reply;
    const c = buildInboundCommunication({ ...stop, action: "STOP" }, opts);
    expect(c.payload).toEqual([{ contentString: "STOP" }]);
    expect(c).not.toHaveProperty("inResponseTo");
    expect(r4Errors(c)).toEqual([]);
  });

  it("refuses anything but an action token as payload", () => {
    const freeText = { ...reply, action: "yes please, see you at the cardiology clinic" } as unknown as InboundReply;
    expect(() => buildInboundCommunication(freeText, opts)).toThrow(/^action must be a reply action token$/);
  });
});
