import type { DeliveryState } from "../delivery/delivery-record.js";
import type { NotDoneReason } from "../shared/not-done-reason.js";
import type { TimelineGroup } from "../delivery/timeline-index.js";

/**
 * Plain words for the codes the ledger keeps. Only fixed text: a reviewer reads these, and
 * nothing here ever carries a value from a resource.
 */

export const groupWords: Record<TimelineGroup, string> = {
  waiting: "Waiting",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
  failed: "Failed",
  "not-done": "Not sent",
};

export const stateWords: Record<DeliveryState, string> = {
  queued: "queued, waiting for its send time",
  dispatching: "being sent to WhatsApp",
  unknown: "send outcome unknown (the process stopped mid-send); the next attempt checks before sending again",
  accepted: "accepted by WhatsApp",
  held: "held: WhatsApp took the template out of use, the message waits",
  sent: "sent by WhatsApp",
  delivered: "delivered to the patient's phone",
  read: "read by the patient",
  failed: "WhatsApp could not deliver it",
  "not-done": "not sent: fhir-notify decided not to send it",
  expired: "no delivery report within the message's time-to-live",
};

export const reasonWords: Record<NotDoneReason, string> = {
  "no-consent": "the patient has not consented to WhatsApp messages",
  "opted-out": "the patient opted out (replied STOP)",
  "no-mobile-number": "the patient has no mobile number on record",
  "invalid-phone-number": "the patient's number is not a valid mobile number",
  "no-template-for-language": "there is no template translation for the patient's language",
  "phi-guard": "the leak guard stopped the message: it would have carried something that is not a safe slot",
  "missing-value": "a value the template needs was missing",
  "patient-inactive": "the patient record is inactive",
  "no-patient": "the resource names no patient",
  "resource-gone": "the resource was deleted before the send time",
  "no-longer-applies": "the resource changed and the rule no longer applies",
  superseded: "a newer change replaced this message",
  "past-due": "its send time had passed (e.g. the appointment already started)",
  "whatsapp-permanent": "WhatsApp refused it permanently",
  expired: "WhatsApp reported no delivery within the message's time-to-live",
  "sender-halted": "the sender was halted (token, account or billing problem)",
  "template-held": "WhatsApp took the template out of use",
  answered: "the patient's reply already answered it",
  "system-error": "an internal error; see the service log for this delivery id",
};

export const groupTone: Record<TimelineGroup, "good" | "bad" | "wait" | "neutral"> = {
  waiting: "wait",
  sent: "neutral",
  delivered: "good",
  read: "good",
  failed: "bad",
  "not-done": "bad",
};

/** "2026-12-04 20:31:07 UTC": one format everywhere, always UTC so reviewers compare like with like. */
export function when(iso: string | undefined): string {
  if (iso === undefined) return "";
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return "";
  return `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}
