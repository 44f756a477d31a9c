/** One template message, in our words. The Cloud API JSON is built from it in cloud-api.request.ts. */
export interface TemplateMessage {
  /** E.164 with leading "+"; the client strips it for the API. Never logged. */
  to: string;
  templateName: string;
  /** Meta language code, e.g. en_US, es. */
  languageCode: string;
  /** Positional body parameters, already sanitised by the mapping. */
  bodyParameters: readonly string[];
  buttons: readonly TemplateButton[];
  /** Echoed back by Meta in status webhooks (biz_opaque_callback_data): the delivery's opaque token (callback-tokens.ts). */
  callbackData: string;
}

export type TemplateButton =
  | { readonly subType: "quick_reply"; readonly index: number; readonly payload: string }
  | { readonly subType: "url"; readonly index: number; readonly text: string };

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
