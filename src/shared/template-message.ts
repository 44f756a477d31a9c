/** One template message, in our words. The Cloud API JSON is built from it in delivery/whatsapp/cloud-api.request.ts. */
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
