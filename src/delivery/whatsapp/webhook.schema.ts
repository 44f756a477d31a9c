import { z } from "zod";
import { AppError } from "../../shared/app-error.js";
import type { Pricing } from "../delivery-record.js";
import { vendorStatusSchema, type VendorStatus } from "./status.map.js";

/**
 * Parsing of the `messages` webhook (whatsapp-cloud-api.md §4.4–§6). Call it only after
 * hasValidSignature. Schemas are loose (Meta adds fields, e.g. user_id and username in 2026) and
 * each status/message is parsed on its own, so one odd item never rejects a batch Meta would
 * otherwise retry for days. Inbound free text is reduced to an opt-out flag and dropped.
 */

/** Meta sends up to 3 MB per POST (§4.5); the route's body limit must allow at least this. */
export const maxWebhookBytes = 3 * 1024 * 1024;

/** Default opt-out words (§6.4), compared after trim, accent stripping and case folding. */
export const defaultOptOutKeywords: readonly string[] = ["STOP", "UNSUBSCRIBE", "CANCEL", "BAJA", "PARAR", "ALTO", "NO MAS", "CANCELAR"];

/** Default words that undo a STOP (English and Spanish), compared the same way. */
export const defaultOptInKeywords: readonly string[] = ["START", "UNSTOP", "SUBSCRIBE", "RESUME", "ALTA", "REANUDAR", "INICIAR", "SUSCRIBIR"];

export interface Keywords {
  optOut: readonly string[];
  optIn: readonly string[];
}

export interface StatusUpdate {
  wamid: string;
  status: VendorStatus;
  /** ISO instant from Meta's Unix-seconds timestamp. */
  timestamp: string;
  /** biz_opaque_callback_data echoed from the send: the delivery's token (older builds: its id). */
  callbackData?: string;
  errorCode?: number;
  /** Business-scoped user id of the recipient (recipient_user_id; user_id in early payloads). */
  userId?: string;
  /** What WhatsApp charges for the message; on sent and on one of delivered/read. */
  pricing?: Pricing;
}

export interface InboundMessage {
  id: string;
  /** Sender's number; Meta may omit it for users with usernames (§6.5). */
  from?: string;
  /** Business-scoped user id (user_id), present on webhooks from 2026. */
  userId?: string;
  /** ISO instant the user sent it, when Meta says. */
  timestamp?: string;
  /** context.id: the wamid of our template the user replied to. */
  contextWamid?: string;
  kind: "button" | "text" | "interactive" | "other";
  /** Quick-reply payload we set at send time (or an interactive reply id). */
  buttonPayload?: string;
  /** Only for text: whether the text was an opt-out keyword. The text itself is not kept. */
  optOut: boolean;
  /** Only for text: whether the text was an opt-in keyword (START after a STOP). */
  optIn: boolean;
}

/**
 * A WABA-level template webhook (§3.1, §3.5), in Meta's words but only the fields we act on.
 * Field names from Meta's webhook references for message_template_status_update,
 * template_category_update and message_template_quality_update.
 */
export type TemplateEvent = { templateName: string; languageCode: string; templateId?: string; at?: string } & (
  | { kind: "status"; event: string; category?: string }
  | { kind: "category"; newCategory?: string; previousCategory?: string; correctCategory?: string; effectiveAt?: string }
  | { kind: "quality"; newScore: string; previousScore?: string }
);

export interface ParsedWebhook {
  statuses: StatusUpdate[];
  inbound: InboundMessage[];
  /** Template status, category and quality changes for the WhatsApp Business Account. */
  templates: TemplateEvent[];
  /** Items addressed to a phone number id other than ours (shared WABA or app). */
  ignoredOtherNumber: number;
  /** Changes for other fields, statuses we do not track (played), and items that failed to parse. */
  ignoredOther: number;
  /** value.errors: system- or account-level problems not tied to a message (e.g. 130429). */
  systemErrorCodes: number[];
}

const envelopeSchema = z.looseObject({
  object: z.literal("whatsapp_business_account"),
  entry: z.array(
    z.looseObject({
      id: z.string().optional(),
      /** When Meta triggered the webhook (Unix seconds); orders template events. */
      time: z.number().int().nonnegative().optional(),
      changes: z.array(z.looseObject({ field: z.string(), value: z.unknown() })),
    }),
  ),
});

const messagesValueSchema = z.looseObject({
  metadata: z.looseObject({ phone_number_id: z.string() }).optional(),
  contacts: z.array(z.unknown()).optional(),
  statuses: z.array(z.unknown()).optional(),
  messages: z.array(z.unknown()).optional(),
  errors: z.array(z.unknown()).optional(),
});

const unixSeconds = z.union([z.string().regex(/^\d{1,12}$/), z.number().int().nonnegative()]).transform((s) => new Date(Number(s) * 1000).toISOString());

const statusItemSchema = z.looseObject({
  id: z.string().min(1),
  status: z.string(),
  timestamp: unixSeconds,
  recipient_id: z.string().optional(),
  // Meta's BSUID page names the status field recipient_user_id; the earliest 2026 payloads (and
  // some BSPs) used user_id. Either is read; a parent BSUID is not used for identity.
  recipient_user_id: z.string().max(160).optional(),
  user_id: z.string().max(160).optional(),
  biz_opaque_callback_data: z.string().optional(),
  errors: z.array(z.looseObject({ code: z.number().int() })).optional(),
  // Parsed on its own below: an odd pricing object must not cost us the status.
  pricing: z.unknown().optional(),
});

/** statuses[].pricing (Meta's status webhook reference): open vocabularies, lower-cased. */
const pricingSchema = z.looseObject({
  billable: z.boolean().optional(),
  pricing_model: z.string().max(32).optional(),
  category: z.string().max(64).optional(),
  type: z.string().max(64).optional(),
});

function toPricing(value: unknown): Pricing | undefined {
  const p = pricingSchema.safeParse(value);
  if (!p.success) return undefined;
  const { billable, pricing_model: model, category, type } = p.data;
  const out: Pricing = {
    ...(category !== undefined ? { category: category.toLowerCase() } : {}),
    ...(model !== undefined ? { model: model.toUpperCase() } : {}),
    ...(type !== undefined ? { type: type.toLowerCase() } : {}),
    ...(billable !== undefined ? { billable } : {}),
  };
  return Object.keys(out).length > 0 ? out : undefined;
}

const messageItemSchema = z.looseObject({
  id: z.string().min(1),
  from: z.string().optional(),
  from_user_id: z.string().max(160).optional(),
  user_id: z.string().max(160).optional(),
  timestamp: unixSeconds.optional(),
  type: z.string(),
  context: z.looseObject({ id: z.string().optional() }).optional(),
  button: z.looseObject({ payload: z.string().optional() }).optional(),
  text: z.looseObject({ body: z.string() }).optional(),
  interactive: z
    .looseObject({
      button_reply: z.looseObject({ id: z.string() }).optional(),
      list_reply: z.looseObject({ id: z.string() }).optional(),
    })
    .optional(),
});

const systemErrorSchema = z.looseObject({ code: z.number().int() });

/** contacts[]: the sender's wa_id (may be omitted for username users) and BSUID. */
const contactSchema = z.looseObject({ wa_id: z.string().optional(), user_id: z.string().max(160).optional() });

// Meta sends the template id as a number; accept a string too. Categories and events are open
// sets (Meta adds values), so they stay strings here and are mapped in template-governance.ts.
const templateId = z.union([z.number().int(), z.string()]).transform(String).optional();
const templateBase = {
  message_template_id: templateId,
  message_template_name: z.string().min(1).max(512),
  message_template_language: z.string().min(1).max(16),
};
const templateStatusSchema = z.looseObject({ ...templateBase, event: z.string().min(1).max(64), message_template_category: z.string().max(64).optional() });
const templateCategorySchema = z.looseObject({
  ...templateBase,
  new_category: z.string().max(64).optional(),
  previous_category: z.string().max(64).optional(),
  correct_category: z.string().max(64).optional(),
  category_update_timestamp: unixSeconds.optional(),
});
const templateQualitySchema = z.looseObject({ ...templateBase, new_quality_score: z.string().min(1).max(32), previous_quality_score: z.string().max(32).optional() });

function toTemplateEvent(field: string, value: unknown, at: string | undefined): TemplateEvent | undefined {
  const base = (v: { message_template_id?: string | undefined; message_template_name: string; message_template_language: string }) => ({
    templateName: v.message_template_name,
    languageCode: v.message_template_language,
    ...(v.message_template_id !== undefined ? { templateId: v.message_template_id } : {}),
    ...(at !== undefined ? { at } : {}),
  });
  switch (field) {
    case "message_template_status_update": {
      const v = templateStatusSchema.safeParse(value);
      if (!v.success) return undefined;
      return { ...base(v.data), kind: "status", event: v.data.event.toUpperCase(), ...(v.data.message_template_category !== undefined ? { category: v.data.message_template_category.toUpperCase() } : {}) };
    }
    case "template_category_update": {
      const v = templateCategorySchema.safeParse(value);
      if (!v.success) return undefined;
      const d = v.data;
      return {
        ...base(d),
        kind: "category",
        ...(d.new_category !== undefined ? { newCategory: d.new_category.toUpperCase() } : {}),
        ...(d.previous_category !== undefined ? { previousCategory: d.previous_category.toUpperCase() } : {}),
        ...(d.correct_category !== undefined ? { correctCategory: d.correct_category.toUpperCase() } : {}),
        ...(d.category_update_timestamp !== undefined ? { effectiveAt: d.category_update_timestamp } : {}),
      };
    }
    case "message_template_quality_update": {
      const v = templateQualitySchema.safeParse(value);
      if (!v.success) return undefined;
      return { ...base(v.data), kind: "quality", newScore: v.data.new_quality_score.toUpperCase(), ...(v.data.previous_quality_score !== undefined ? { previousScore: v.data.previous_quality_score.toUpperCase() } : {}) };
    }
    default:
      return undefined;
  }
}

const templateFields = new Set(["message_template_status_update", "template_category_update", "message_template_quality_update"]);

export function parseWebhook(text: string, ownPhoneNumberId: string | undefined, keywords: Keywords = { optOut: defaultOptOutKeywords, optIn: defaultOptInKeywords }): ParsedWebhook {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // No cause attached: V8's JSON error message quotes the body.
    throw new AppError("invalid", "webhook body is not JSON");
  }
  const envelope = envelopeSchema.safeParse(json);
  if (!envelope.success) throw new AppError("invalid", "webhook body is not a WhatsApp Business Account notification", "entry");

  const words = { optOut: new Set(keywords.optOut.map(normaliseKeyword)), optIn: new Set(keywords.optIn.map(normaliseKeyword)) };
  const out: ParsedWebhook = { statuses: [], inbound: [], templates: [], ignoredOtherNumber: 0, ignoredOther: 0, systemErrorCodes: [] };

  for (const entry of envelope.data.entry) {
    const at = entry.time !== undefined ? new Date(entry.time * 1000).toISOString() : undefined;
    for (const change of entry.changes) {
      if (templateFields.has(change.field)) {
        const event = toTemplateEvent(change.field, change.value, at);
        if (event === undefined) out.ignoredOther += 1;
        else out.templates.push(event);
        continue;
      }
      const value = change.field === "messages" ? messagesValueSchema.safeParse(change.value) : undefined;
      if (value === undefined || !value.success) {
        out.ignoredOther += 1;
        continue;
      }
      const { metadata, statuses = [], messages = [], errors = [], contacts = [] } = value.data;
      if (ownPhoneNumberId !== undefined && metadata?.phone_number_id !== ownPhoneNumberId) {
        out.ignoredOtherNumber += Math.max(1, statuses.length + messages.length);
        continue;
      }
      for (const item of statuses) {
        const status = toStatusUpdate(item);
        if (status === undefined) out.ignoredOther += 1;
        else out.statuses.push(status);
      }
      const senders = contacts.flatMap((c) => {
        const parsed = contactSchema.safeParse(c);
        return parsed.success ? [parsed.data] : [];
      });
      for (const item of messages) {
        const message = toInboundMessage(item, words, senders);
        if (message === undefined) out.ignoredOther += 1;
        else out.inbound.push(message);
      }
      for (const item of errors) {
        const e = systemErrorSchema.safeParse(item);
        if (e.success) out.systemErrorCodes.push(e.data.code);
        else out.ignoredOther += 1;
      }
    }
  }
  return out;
}

function toStatusUpdate(item: unknown): StatusUpdate | undefined {
  const parsed = statusItemSchema.safeParse(item);
  if (!parsed.success) return undefined;
  const status = vendorStatusSchema.safeParse(parsed.data.status);
  if (!status.success) return undefined;
  const { id, timestamp, biz_opaque_callback_data: callbackData, errors } = parsed.data;
  const errorCode = errors?.[0]?.code;
  const userId = parsed.data.recipient_user_id ?? parsed.data.user_id;
  const pricing = toPricing(parsed.data.pricing);
  return {
    wamid: id,
    status: status.data,
    timestamp,
    ...(callbackData !== undefined ? { callbackData } : {}),
    ...(errorCode !== undefined ? { errorCode } : {}),
    ...(userId !== undefined && userId !== "" ? { userId } : {}),
    ...(pricing !== undefined ? { pricing } : {}),
  };
}

function toInboundMessage(
  item: unknown,
  words: { optOut: ReadonlySet<string>; optIn: ReadonlySet<string> },
  contacts: readonly { wa_id?: string | undefined; user_id?: string | undefined }[],
): InboundMessage | undefined {
  const parsed = messageItemSchema.safeParse(item);
  if (!parsed.success) return undefined;
  const m = parsed.data;
  // The BSUID on the message itself, else from its contact: the one with the same wa_id, or the
  // only one when the number is withheld.
  const contact = m.from !== undefined ? contacts.find((c) => c.wa_id === m.from) : contacts.length === 1 ? contacts[0] : undefined;
  const userId = m.from_user_id ?? m.user_id ?? contact?.user_id;
  const from = m.from ?? (contact?.wa_id !== undefined && contact.wa_id !== "" ? contact.wa_id : undefined);
  const base = {
    id: m.id,
    optIn: false,
    ...(from !== undefined && from !== "" ? { from } : {}),
    ...(userId !== undefined && userId !== "" ? { userId } : {}),
    ...(m.timestamp !== undefined ? { timestamp: m.timestamp } : {}),
    ...(m.context?.id !== undefined ? { contextWamid: m.context.id } : {}),
  };
  if (m.type === "button" && m.button !== undefined) {
    return { ...base, kind: "button", optOut: false, ...(m.button.payload !== undefined ? { buttonPayload: m.button.payload } : {}) };
  }
  if (m.type === "text" && m.text !== undefined) {
    const word = normaliseKeyword(m.text.body);
    return { ...base, kind: "text", optOut: words.optOut.has(word), optIn: words.optIn.has(word) };
  }
  if (m.type === "interactive" && m.interactive !== undefined) {
    const replyId = m.interactive.button_reply?.id ?? m.interactive.list_reply?.id;
    return { ...base, kind: "interactive", optOut: false, ...(replyId !== undefined ? { buttonPayload: replyId } : {}) };
  }
  return { ...base, kind: "other", optOut: false };
}

/**
 * "  Stop! " → "STOP", "No más" → "NO MAS". Whole-message match only: a sentence that merely
 * contains "stop" is not an opt-out.
 */
export function normaliseKeyword(text: string): string {
  return text
    .normalize("NFKD")
    .replace(/\p{M}/gu, "")
    .toUpperCase()
    .replace(/^[\p{P}\p{S}\s]+|[\p{P}\p{S}\s]+$/gu, "")
    .replace(/\s+/gu, " ");
}
