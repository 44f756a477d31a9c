/** Why a notification was not sent. Codes, never content. */
export type NotDoneReason =
  | "no-consent"
  | "opted-out"
  | "no-mobile-number"
  | "invalid-phone-number"
  | "no-template-for-language"
  | "phi-guard"
  /** A slot had no value: e.g. a Location without a configured public label. */
  | "missing-value"
  | "patient-inactive"
  | "no-patient"
  | "resource-gone"
  | "no-longer-applies"
  | "superseded"
  | "past-due"
  | "whatsapp-permanent"
  | "expired"
  | "sender-halted"
  /** Meta paused, disabled, rejected or recategorised the template (templateHold says which). */
  | "template-held"
  /** The patient's reply answered it (e.g. Confirm ends the remaining confirm reminders). */
  | "answered"
  | "system-error";
