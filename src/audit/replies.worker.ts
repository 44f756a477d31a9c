import type { Job } from "bullmq";
import type { FhirResource } from "fhir/r4";
import type { Logger } from "pino";
import type { FhirPort } from "../fhir/fhir.port.js";
import type { AuditOptions } from "./audit.config.js";
import { buildInboundCommunication, type ReplyAction } from "./communication.builder.js";
import { buildAppointmentResponse, buildOptInConsent, buildOptOutConsent, buildRescheduleTask, closeOptOutConsent } from "./reply.builder.js";
import type { MappingConfig } from "../mapping/mapping.config.js";
import type { Ledger } from "../delivery/ledger.js";
import type { OptOutStore } from "../delivery/opt-out.js";
import type { Scheduler } from "../delivery/schedule.js";
import type { ReplyWord, Rule } from "../mapping/load-rules.js";
import { consume } from "../delivery/queues.js";
import type { JobData } from "../delivery/jobs.js";

export interface RepliesDeps {
  fhir: FhirPort;
  ledger: Ledger;
  optOuts: OptOutStore;
  audit: AuditOptions;
  organizationRef: string | undefined;
  /** With onOptOut record-deny, a STOP also becomes a deny Consent. */
  consent: MappingConfig["consent"];
  /** Rule ids whose waiting messages a reply word ends, per resource type (rules' endedByReply). */
  endedByReply: (resourceType: string, word: ReplyWord) => readonly string[];
  scheduler: Pick<Scheduler, "endAnswered">;
  log: Logger;
}

/** From the rules' endedByReply: which rules' waiting messages each reply word ends, per resource type. */
export function endedByReplyIndex(rules: readonly Rule[]): RepliesDeps["endedByReply"] {
  const index = new Map<string, string[]>();
  for (const rule of rules) {
    if (!rule.enabled) continue;
    for (const word of rule.message?.endedByReply ?? []) {
      const key = `${rule.resourceType}|${word}`;
      index.set(key, [...(index.get(key) ?? []), rule.id]);
    }
  }
  return (resourceType, word) => index.get(`${resourceType}|${word}`) ?? [];
}

const actionToken = { confirm: "CONFIRM", reschedule: "RESCHEDULE", "opt-out": "STOP", "opt-in": "START" } as const satisfies Record<string, ReplyAction>;

/**
 * A patient's button tap or STOP. Everything it creates on the FHIR server is a conditional create
 * on the inbound message id, so Meta's duplicate deliveries change nothing.
 */
export function handleInbound(deps: RepliesDeps) {
  const createOnce = async (resource: FhirResource, inboundId: string) => {
    await deps.fhir.create(resource, { ifNoneExist: `identifier=${encodeURIComponent(`${deps.audit.inboundIdSystem}|${inboundId}`)}` });
  };

  /**
   * STOP or START, under every identity the webhook gave (number and/or business-scoped user id)
   * and what they are linked to. Recorded the same way both ways: the opt-out store, an inbound
   * Communication, and with record-deny a Consent (deny for STOP; for START a permit, with the
   * earlier deny ended). A word older than the patient's latest changes nothing but is audited.
   */
  async function recordWord(data: JobData<"inbound-message"> & { action: "opt-out" | "opt-in" }, log: Logger): Promise<string> {
    const word = data.action === "opt-out" ? "out" : "in";
    const at = data.sentAt ?? data.receivedAt;
    const hashes = [data.fromHash, data.userHash].filter((h): h is string => h !== undefined);
    if (data.fromHash !== undefined && data.userHash !== undefined) await deps.optOuts.link(data.userHash, data.fromHash);
    // Neither number nor BSUID: a reply to one of our messages still names who we sent it to.
    const replied = data.contextWamid !== undefined ? await deps.ledger.byWamid(data.contextWamid).then((id) => (id !== undefined ? deps.ledger.get(id) : undefined)) : undefined;
    if (hashes.length === 0 && replied?.recipientHash !== undefined) hashes.push(replied.recipientHash);
    if (hashes.length === 0) {
      log.error({ event: `${data.action}-unattributed` }, "STOP/START without a number, a user id or a message it replies to; nothing to record it against");
      return `${data.action} without a sender`;
    }
    const applied = await deps.optOuts.recordWord(hashes, word, at);
    const patientRef = (await deps.optOuts.patientFor(hashes)) ?? replied?.patientRef;
    log.info({ event: data.action, knownPatient: patientRef !== undefined, latest: applied, byUserId: data.userHash !== undefined, byNumber: data.fromHash !== undefined }, word === "out" ? "patient opted out of WhatsApp messages" : "patient opted back in to WhatsApp messages");
    const done = word === "out" ? "opted out" : "opted in";
    if (patientRef === undefined) return done;
    const organization = deps.organizationRef !== undefined ? { organizationRef: deps.organizationRef } : {};
    await createOnce(
      buildInboundCommunication({ inboundWamid: data.inboundId, action: actionToken[data.action], sentAt: at, receivedAt: data.receivedAt, patientRef, ...organization }, deps.audit),
      data.inboundId,
    );
    if (!applied || deps.consent.onOptOut !== "record-deny") return done;
    const { categorySystem, categoryCode } = deps.consent;
    const consent = { inboundWamid: data.inboundId, patientRef, at, categorySystem, categoryCode, ...organization };
    if (word === "out") {
      await createOnce(buildOptOutConsent(consent, deps.audit), data.inboundId);
      log.info({ event: "opt-out-consent" }, "opt-out recorded as a deny Consent");
      return done;
    }
    const bundle = await deps.fhir.search("Consent", { patient: patientRef, status: "active", category: `${categorySystem}|${categoryCode}` });
    for (const entry of bundle.entry ?? []) {
      const r = entry.resource;
      if (r?.resourceType !== "Consent" || r.id === undefined || r.patient?.reference !== patientRef) continue;
      const closed = closeOptOutConsent({ ...r, id: r.id }, at, deps.audit);
      if (closed !== undefined) await deps.fhir.update(closed, r.meta?.versionId !== undefined ? { ifMatch: `W/"${r.meta.versionId}"` } : {});
    }
    await createOnce(buildOptInConsent(consent, deps.audit), data.inboundId);
    log.info({ event: "opt-in-consent" }, "opt-in recorded as a permit Consent; the earlier deny ends");
    return done;
  }

  return async (job: Job): Promise<string> => {
    const data = consume("inbound-message", job);
    const log = deps.log.child({ jobId: job.id, action: data.action });

    if (data.action === "opt-out" || data.action === "opt-in") return recordWord({ ...data, action: data.action }, log);
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
    const word = actionToken[data.action];
    const resourceType = record.resourceRef.slice(0, record.resourceRef.indexOf("/"));
    const ended = await deps.scheduler.endAnswered({ source: record.source, server: record.server ?? record.source }, record.resourceRef, deps.endedByReply(resourceType, word), word, record.patientRef);
    log.info({ deliveryId, ended: ended.length }, ended.length > 0 ? "reply recorded; it ends the messages it answers" : "reply recorded");
    return data.action;
  };
}
