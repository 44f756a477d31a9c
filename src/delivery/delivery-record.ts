/**
 * What fhir-notify knows about one intended message (one delivery id). Kept in Redis by the
 * ledger; projected into a FHIR Communication by the audit worker. It holds references and
 * ids, plus the rendered text actually sent (safe slots only) for Communication.payload.
 */
export type DeliveryState =
  | "queued"
  | "dispatching"
  | "unknown"
  | "accepted"
  | "held"
  | "sent"
  | "delivered"
  | "read"
  | "failed"
  | "not-done"
  | "expired";

import type { NotDoneReason } from "../shared/not-done-reason.js";
import type { TemplateHoldCode } from "./template-holds.js";

export type DeliveryCategory = "notification" | "reminder";

export interface StatusEvent {
  state: DeliveryState;
  /** ISO instant the event happened (vendor timestamp when known). */
  at: string;
  /** WhatsApp error code for failures. */
  code?: number;
}

/**
 * What WhatsApp said it charges for the message (status webhook `pricing`, §5.1): category
 * (utility, marketing, authentication, service, ...), model (PMP; CBP on older webhooks), type
 * (regular = charged, free_customer_service, free_entry_point) and the deprecated billable flag.
 */
export interface Pricing {
  category?: string;
  model?: string;
  type?: string;
  billable?: boolean;
}

export interface DeliveryRecord {
  deliveryId: string;
  /** The channel (configured source) whose notification first decided this message. */
  source: string;
  /** fhirServerId() of the FHIR server the resource lives on; absent on records of older builds. */
  server?: string;
  ruleId: string;
  rulesHash: string;
  templateName: string;
  category: DeliveryCategory;
  /** "Appointment/123" */
  resourceRef: string;
  resourceVersion?: string;
  /** "Patient/456" */
  patientRef?: string;
  /** sha256 of the number the message went to (opt-out.ts hashPhone): links a BSUID to it. Never the number. */
  recipientHash?: string;
  /** "Organization/..." that sends in the hospital's name. */
  senderRef?: string;
  state: DeliveryState;
  reason?: NotDoneReason;
  /** A fixed, PHI-free explanation (e.g. "no template for language es-MX" is NOT allowed; "no template for the patient's language" is). */
  reasonDetail?: string;
  vendorCode?: number;
  /** For missing-value: the safe slot that had no value (a slot name, never a value). */
  missingSlot?: string;
  /** For phi-guard: the slot, the guard rule and the element it matched (names, never the value). */
  phiGuard?: { slot: string; rule: string; element?: string };
  /** The price WhatsApp reported, from the first status that carried one. */
  pricing?: Pricing;
  /** With reason template-held: what Meta did to the template. */
  templateHold?: TemplateHoldCode;
  wamid?: string;
  languageCode?: string;
  /** The body text as sent: template text with safe-slot values. */
  renderedText?: string;
  scheduledFor?: string;
  sentAt?: string;
  deliveredAt?: string;
  readAt?: string;
  failedAt?: string;
  history: StatusEvent[];
  communicationId?: string;
  createdAt: string;
  updatedAt: string;
  dryRun?: boolean;
}
