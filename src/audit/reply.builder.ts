import type { AppointmentResponse, Consent, Task } from "fhir/r4";
import type { AuditOptions } from "./audit.config.js";
import { relativeReference } from "./communication.builder.js";

/*
 * What a patient's quick-reply tap becomes on the FHIR server (fhir-notifications.md §11).
 * The inbound wamid is the identifier of each resource, so a conditional create on it makes a
 * redelivered webhook a no-op. Nothing the patient typed is copied; texts here are fixed.
 */

/** A button tap on an appointment message, resolved to references. */
export interface AppointmentReply {
  inboundWamid: string;
  appointmentRef: string;
  patientRef: string;
}

/** "Confirm": the patient accepts the appointment. fhir-notify does not patch the Appointment. */
export function buildAppointmentResponse(reply: AppointmentReply, opts: AuditOptions): AppointmentResponse {
  return {
    resourceType: "AppointmentResponse",
    identifier: [{ system: opts.inboundIdSystem, value: reply.inboundWamid }],
    appointment: relativeReference(reply.appointmentRef, ["Appointment"], "appointmentRef"),
    actor: relativeReference(reply.patientRef, ["Patient"], "patientRef"),
    participantStatus: "accepted",
  };
}

/**
 * "Reschedule": a work item for the scheduling staff. The patient has not declined, so no
 * AppointmentResponse is written for it.
 */
export function buildRescheduleTask(
  reply: AppointmentReply & {
    /** When the patient tapped (WhatsApp's timestamp). */
    authoredOn: string;
    /** Who should pick the task up, e.g. "HealthcareService/scheduling-desk". */
    ownerRef?: string;
  },
  opts: AuditOptions,
): Task {
  const patient = relativeReference(reply.patientRef, ["Patient"], "patientRef");
  const authoredOn = Date.parse(reply.authoredOn);
  if (Number.isNaN(authoredOn)) throw new RangeError("authoredOn must be an ISO date-time");
  const owner =
    reply.ownerRef === undefined
      ? undefined
      : relativeReference(reply.ownerRef, ["HealthcareService", "Organization", "PractitionerRole", "Practitioner", "CareTeam"], "ownerRef");

  return {
    resourceType: "Task",
    identifier: [{ system: opts.inboundIdSystem, value: reply.inboundWamid }],
    status: "requested",
    intent: "order",
    priority: "routine",
    code: { text: "Patient requested reschedule via WhatsApp" },
    description: "Patient tapped 'Reschedule' on the appointment message.",
    focus: relativeReference(reply.appointmentRef, ["Appointment"], "appointmentRef"),
    for: patient,
    authoredOn: new Date(authoredOn).toISOString(),
    requester: patient,
    ...(owner !== undefined ? { owner } : {}),
  };
}

/**
 * A STOP, recorded as the patient's withdrawal (mapping.consent.onOptOut: record-deny): an active
 * Consent in the WhatsApp-logistics category whose provision denies from the moment of the STOP.
 * The consent check lets a deny win over any permit, so this ends messages from every system that
 * reads it. R4 requires a policy: the v3 OPTOUT directive.
 */
export function buildOptOutConsent(
  optOut: { inboundWamid: string; patientRef: string; at: string; categorySystem: string; categoryCode: string; organizationRef?: string },
  opts: AuditOptions,
): Consent {
  const at = Date.parse(optOut.at);
  if (Number.isNaN(at)) throw new RangeError("at must be an ISO date-time");
  const when = new Date(at).toISOString();
  return {
    resourceType: "Consent",
    identifier: [{ system: opts.inboundIdSystem, value: optOut.inboundWamid }],
    status: "active",
    scope: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/consentscope", code: "patient-privacy" }] },
    category: [{ coding: [{ system: optOut.categorySystem, code: optOut.categoryCode }] }],
    patient: relativeReference(optOut.patientRef, ["Patient"], "patientRef"),
    dateTime: when,
    ...(optOut.organizationRef !== undefined ? { organization: [relativeReference(optOut.organizationRef, ["Organization"], "organizationRef")] } : {}),
    policyRule: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "OPTOUT" }], text: "Replied STOP to WhatsApp messages" },
    provision: { type: "deny", period: { start: when } },
  };
}

/**
 * A START after a STOP (mapping.consent.onOptOut: record-deny), recorded the way the STOP was: an
 * active Consent in the WhatsApp-logistics category whose provision permits from that moment. The
 * deny a STOP recorded would still win over it, so the replies worker also ends that deny's
 * period at the same moment (closeOptOutConsent): the patient's latest word wins.
 */
export function buildOptInConsent(
  optIn: { inboundWamid: string; patientRef: string; at: string; categorySystem: string; categoryCode: string; organizationRef?: string },
  opts: AuditOptions,
): Consent {
  const deny = buildOptOutConsent(optIn, opts);
  return {
    ...deny,
    policyRule: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "OPTIN" }], text: "Replied START to WhatsApp messages" },
    provision: { type: "permit", period: { start: deny.dateTime! } },
  };
}

/**
 * The deny Consent an earlier STOP recorded, ended at the START: its provision no longer denies
 * from then on. Undefined when it is not one of ours, not a deny, or already ended by then.
 */
export function closeOptOutConsent(consent: Consent & { id: string }, at: string, opts: AuditOptions): (Consent & { id: string }) | undefined {
  const ours = (consent.identifier ?? []).some((i) => i.system === opts.inboundIdSystem);
  const provision = consent.provision;
  if (!ours || provision?.type !== "deny") return undefined;
  const end = Date.parse(at);
  if (Number.isNaN(end)) throw new RangeError("at must be an ISO date-time");
  const start = provision.period?.start !== undefined ? Date.parse(provision.period.start) : Number.NEGATIVE_INFINITY;
  const currentEnd = provision.period?.end !== undefined ? Date.parse(provision.period.end) : Number.POSITIVE_INFINITY;
  if (start >= end || currentEnd <= end) return undefined;
  return { ...consent, provision: { ...provision, period: { ...provision.period, end: new Date(end).toISOString() } } };
}
