import type { TemplateMessage } from "../../shared/template-message.js";

export type AcceptedStatus = "accepted" | "held_for_quality_assessment" | "paused";

export interface SendResult {
  wamid: string;
  waId?: string;
  messageStatus: AcceptedStatus;
}

/** Our own failure vocabulary; only status.map.ts knows Meta's codes. */
export type SendFailure = "rate-limited" | "transient" | "recipient" | "template" | "halt-sender" | "unknown";

export class SendError extends Error {
  override name = "SendError";
  constructor(
    readonly failure: SendFailure,
    message: string,
    readonly extra: {
      code?: number;
      fbtraceId?: string;
      retryAfterMs?: number;
      /** Transport failures: did the request leave? After it left, the outcome is unknown. */
      phase?: "before_send" | "after_send";
    } = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  get retryable(): boolean {
    return this.failure === "rate-limited" || this.failure === "transient";
  }
}

/** A channel that sends template messages: the Cloud API client and the dry-run outbox implement it. */
export interface WhatsAppSender {
  readonly mode: "live" | "dry-run";
  sendTemplate(msg: TemplateMessage): Promise<SendResult>;
}
