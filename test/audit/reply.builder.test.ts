import { describe, expect, it } from "vitest";
import { auditConfigSchema } from "../../src/audit/audit.config.js";
import { buildAppointmentResponse, buildOptOutConsent, buildRescheduleTask } from "../../src/audit/reply.builder.js";
import { r4Errors } from "./r4-validation.js";

const opts = auditConfigSchema.parse({});
const tap = {
  inboundWamid: "wamid.HBgNNTUxMTkwMDAwMDAwMRUCABIYFjlBMUMzRTVGNzA5MkI0RDZGOEExAA==",
  appointmentRef: "Appointment/apt-7781",
  patientRef: "Patient/pat-1001",
};

describe("buildAppointmentResponse", () => {
  it("accepts the appointment on the patient's behalf, keyed by the inbound message id", () => {
    const response = buildAppointmentResponse(tap, opts);
    expect(response).toEqual({
      resourceType: "AppointmentResponse",
      identifier: [{ system: "https://fhir-notify.dev/sid/whatsapp-inbound-id", value: tap.inboundWamid }],
      appointment: { reference: "Appointment/apt-7781" },
      actor: { reference: "Patient/pat-1001" },
      participantStatus: "accepted",
    });
    expect(r4Errors(response)).toEqual([]);
  });

  it("refuses an appointment reference of another type", () => {
    expect(() => buildAppointmentResponse({ ...tap, appointmentRef: "Encounter/enc-1" }, opts)).toThrow(/^appointmentRef must be a reference to Appointment$/);
  });
});

describe("buildRescheduleTask", () => {
  it("asks the scheduling staff to reschedule, with fixed texts and no patient words", () => {
    const task = buildRescheduleTask({ ...tap, authoredOn: "2025-03-04T12:40:00Z", ownerRef: "HealthcareService/scheduling-desk" }, opts);
    expect(task.identifier).toEqual([{ system: "https://fhir-notify.dev/sid/whatsapp-inbound-id", value: tap.inboundWamid }]);
    expect(task.status).toBe("requested");
    expect(task.intent).toBe("order");
    expect(task.priority).toBe("routine");
    expect(task.code).toEqual({ text: "Patient requested reschedule via WhatsApp" });
    expect(task.description).toBe("Patient tapped 'Reschedule' on the appointment message.");
    expect(task.focus).toEqual({ reference: "Appointment/apt-7781" });
    expect(task.for).toEqual({ reference: "Patient/pat-1001" });
    expect(task.requester).toEqual({ reference: "Patient/pat-1001" });
    expect(task.owner).toEqual({ reference: "HealthcareService/scheduling-desk" });
    expect(task.authoredOn).toBe("2025-03-04T12:40:00.000Z");
    expect(r4Errors(task)).toEqual([]);
  });

  it("leaves the owner out when the site has not named one", () => {
    const task = buildRescheduleTask({ ...tap, authoredOn: "2025-03-04T12:40:00Z" }, opts);
    expect(task).not.toHaveProperty("owner");
    expect(r4Errors(task)).toEqual([]);
  });

  it("refuses an authoredOn that is not a date-time", () => {
    expect(() => buildRescheduleTask({ ...tap, authoredOn: "tomorrow" }, opts)).toThrow(/^authoredOn must be an ISO date-time$/);
  });
});

describe("buildOptOutConsent", () => {
  const stop = {
    inboundWamid: tap.inboundWamid,
    patientRef: "Patient/pat-1001",
    at: "2026-11-25T16:04:05Z",
    categorySystem: "https://fhir-notify.dev/fhir/CodeSystem/consent-category",
    categoryCode: "whatsapp-logistics",
    organizationRef: "Organization/hospital-main",
  };

  it("records the withdrawal as a valid R4 Consent that denies from the STOP on, keyed by the inbound message id", () => {
    const consent = buildOptOutConsent(stop, opts);
    expect(consent).toMatchObject({
      status: "active",
      identifier: [{ system: opts.inboundIdSystem, value: tap.inboundWamid }],
      patient: { reference: "Patient/pat-1001" },
      organization: [{ reference: "Organization/hospital-main" }],
      dateTime: "2026-11-25T16:04:05.000Z",
      provision: { type: "deny", period: { start: "2026-11-25T16:04:05.000Z" } },
    });
    expect(r4Errors(consent)).toEqual([]);
  });

  it("refuses a time that is not a date-time and a patient reference of another type", () => {
    expect(() => buildOptOutConsent({ ...stop, at: "yesterday" }, opts)).toThrow(RangeError);
    expect(() => buildOptOutConsent({ ...stop, patientRef: "Practitioner/p1" }, opts)).toThrow();
  });
});
