import type { Job } from "bullmq";
import type { FhirResource } from "fhir/r4";
import type { Logger } from "pino";
import type { FhirPort } from "../fhir/fhir.port.js";
import type { AuditOptions } from "../audit/audit.config.js";
import { buildInboundCommunication, type ReplyAction } from "../audit/communication.builder.js";
import { buildAppointmentResponse, buildOptOutConsent, buildRescheduleTask } from "../audit/reply.builder.js";
import type { MappingConfig } from "../mapping/mapping.config.js";
import type { Ledger } from "./ledger.js";
import type { OptOutStore } from "./opt-out.js";
import { consume } from "./queues.js";

export interface RepliesDeps {
  fhir: FhirPort;
  ledger: Ledger;
  optOuts: OptOutStore;
  audit: AuditOptions;
  organizationRef: string | undefined;
  /** With onOptOut record-deny, a STOP also becomes a deny Consent. */
  consent: MappingConfig["consent"];
  log: Logger;
}

const actionToken = { confirm: "CONFIRM", reschedule: "RESCHEDULE", "opt-out": "STOP" } as const satisfies Record<string, ReplyAction>;

/**
 * A patient's button tap or STOP. Everything it creates on the FHIR server is a conditional create
 * on the inbound message id, so Meta's duplicate deliveries change nothing.
 */
export function handleInbound(deps: RepliesDeps) {
  const createOnce = async (resource: FhirResource, inboundId: string) => {
    await deps.fhir.create(resource, { ifNoneExist: `identifier=${encodeURIComponent(`${deps.audit.inboundIdSystem}|${inboundId}`)}` });
  };

  return async (job: Job): Promise<string> => {
    const data = consume("inbound-message", job);
    const log = deps.log.child({ jobId: job.id, action: data.action });

    if (data.action === "opt-out") {
      if (data.fromHash === undefined) return "opt-out without a sender";
      await deps.optOuts.optOut(data.fromHash, data.receivedAt);
      const patientRef = await deps.optOuts.patientFor(data.fromHash);
      log.info({ event: "opt-out", knownPatient: patientRef !== undefined }, "patient opted out of WhatsApp messages");
      if (patientRef === undefined) return "opted out";
      await createOnce(
        buildInboundCommunication(
          { inboundWamid: data.inboundId, action: "STOP", sentAt: data.receivedAt, receivedAt: data.receivedAt, patientRef, ...(deps.organizationRef ? { organizationRef: deps.organizationRef } : {}) },
          deps.audit,
        ),
        data.inboundId,
      );
      if (deps.consent.onOptOut === "record-deny") {
        const { categorySystem, categoryCode } = deps.consent;
        const consent = { inboundWamid: data.inboundId, patientRef, at: data.receivedAt, categorySystem, categoryCode };
        await createOnce(buildOptOutConsent({ ...consent, ...(deps.organizationRef ? { organizationRef: deps.organizationRef } : {}) }, deps.audit), data.inboundId);
        log.info({ event: "opt-out-consent" }, "opt-out recorded as a deny Consent");
      }
      return "opted out";
    }
    if (data.action === "other") return "ignored";

    const deliveryId = data.contextWamid !== undefined ? await deps.ledger.byWamid(data.contextWamid) : undefined;
    const record = deliveryId !== undefined ? await deps.ledger.get(deliveryId) : undefined;
    if (record?.patientRef === undefined || !record.resourceRef.startsWith("Appointment/")) {
      log.warn("button reply does not match an appointment message we sent");
      return "unmatched";
    }
    const reply = { inboundWamid: data.inboundId, appointmentRef: record.resourceRef, patientRef: record.patientRef };
    if (data.action === "confirm") await createOnce(buildAppointmentResponse(reply, deps.audit), data.inboundId);
    else await createOnce(buildRescheduleTask({ ...reply, authoredOn: data.receivedAt }, deps.audit), data.inboundId);
    await createOnce(
      buildInboundCommunication(
        {
          inboundWamid: data.inboundId,
          action: actionToken[data.action],
          sentAt: data.receivedAt,
          receivedAt: data.receivedAt,
          patientRef: record.patientRef,
          aboutRef: record.resourceRef,
          ...(record.communicationId !== undefined ? { outboundCommunicationRef: `Communication/${record.communicationId}` } : {}),
          ...(deps.organizationRef ? { organizationRef: deps.organizationRef } : {}),
        },
        deps.audit,
      ),
      data.inboundId,
    );
    log.info({ deliveryId }, "reply recorded");
    return data.action;
  };
}
