import type { TemplateMessage } from "../../shared/template-message.js";

/** The exact JSON body the Cloud API receives for a template send (whatsapp-cloud-api.md §2.1). */
export interface CloudApiTemplateRequest {
  messaging_product: "whatsapp";
  recipient_type: "individual";
  to: string;
  type: "template";
  biz_opaque_callback_data: string;
  template: {
    name: string;
    language: { code: string };
    components: CloudApiComponent[];
  };
}

type CloudApiComponent =
  | { type: "body"; parameters: { type: "text"; text: string }[] }
  | { type: "button"; sub_type: "quick_reply"; index: string; parameters: { type: "payload"; payload: string }[] }
  | { type: "button"; sub_type: "url"; index: string; parameters: { type: "text"; text: string }[] };

export function toCloudApiRequest(msg: TemplateMessage): CloudApiTemplateRequest {
  const components: CloudApiComponent[] = [];
  if (msg.bodyParameters.length > 0) {
    components.push({ type: "body", parameters: msg.bodyParameters.map((text) => ({ type: "text", text })) });
  }
  for (const button of msg.buttons) {
    switch (button.subType) {
      case "quick_reply":
        components.push({
          type: "button",
          sub_type: "quick_reply",
          index: String(button.index),
          parameters: [{ type: "payload", payload: button.payload }],
        });
        break;
      case "url":
        components.push({ type: "button", sub_type: "url", index: String(button.index), parameters: [{ type: "text", text: button.text }] });
        break;
    }
  }
  return {
    messaging_product: "whatsapp",
    recipient_type: "individual",
    // Meta accepts numbers with or without "+"; its own examples send digits only.
    to: msg.to.replace(/^\+/, ""),
    type: "template",
    biz_opaque_callback_data: msg.callbackData,
    template: { name: msg.templateName, language: { code: msg.languageCode }, components },
  };
}
