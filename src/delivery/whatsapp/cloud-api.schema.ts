import { z } from "zod";
import type { CloudApiTemplateRequest } from "./cloud-api.request.js";

/**
 * zod schemas for the Cloud API edge (whatsapp-cloud-api.md §2, §3.3, §7.1). The request schema
 * encodes the rules Meta applies to a template send, so a message that would be rejected is caught
 * before any network call, in live and dry-run mode alike. Issue messages never contain values.
 */

/** Meta: "Param text cannot have new-line/tab characters or more than 4 consecutive spaces". */
const forbiddenWhitespace = /[\n\r\t]| {5,}/;
/** Body text is capped at 1,024 characters after hydration; the values alone can never exceed that. */
const maxBodyChars = 1024;

const paramText = z
  .string()
  .min(1, "must not be empty")
  .max(maxBodyChars, "is longer than the body limit")
  .refine((s) => s.trim().length > 0, "must not be blank")
  .refine((s) => !forbiddenWhitespace.test(s), "must not contain new-line/tab characters or more than 4 consecutive spaces");

const buttonIndex = z.string().regex(/^\d$/, "must be a button position 0-9");

const bodyComponent = z.strictObject({
  type: z.literal("body"),
  parameters: z.array(z.strictObject({ type: z.literal("text"), text: paramText })).min(1),
});
const quickReplyComponent = z.strictObject({
  type: z.literal("button"),
  sub_type: z.literal("quick_reply"),
  index: buttonIndex,
  parameters: z.tuple([z.strictObject({ type: z.literal("payload"), payload: z.string().min(1, "must not be empty").max(256) })]),
});
const urlComponent = z.strictObject({
  type: z.literal("button"),
  sub_type: z.literal("url"),
  index: buttonIndex,
  parameters: z.tuple([z.strictObject({ type: z.literal("text"), text: paramText })]),
});

export const cloudApiTemplateRequestSchema = z
  .strictObject({
    messaging_product: z.literal("whatsapp"),
    recipient_type: z.literal("individual"),
    // Country code + subscriber number, digits only (the port strips the "+").
    to: z.string().regex(/^[1-9]\d{6,14}$/, "must be an international number without '+'"),
    type: z.literal("template"),
    // The limit is quoted as 512 by integrators; Meta does not state it (§2.1).
    biz_opaque_callback_data: z.string().min(1).max(512),
    template: z.strictObject({
      name: z.string().regex(/^[a-z0-9_]{1,512}$/, "must be lowercase letters, digits and underscores"),
      language: z.strictObject({ code: z.string().regex(/^[a-z]{2,3}(_[A-Za-z0-9]{2,4})?$/, "must be a Meta language code such as en_US") }),
      components: z.array(z.discriminatedUnion("sub_type", [quickReplyComponent, urlComponent]).or(bodyComponent)).max(11),
    }),
  })
  .superRefine((req, ctx) => {
    const bodies = req.template.components.filter((c) => c.type === "body");
    if (bodies.length > 1) ctx.addIssue({ code: "custom", message: "only one body component is allowed", path: ["template", "components"] });
    const chars = bodies.flatMap((b) => b.parameters).reduce((n, p) => n + p.text.length, 0);
    if (chars > maxBodyChars) ctx.addIssue({ code: "custom", message: "body parameters exceed the hydrated body limit", path: ["template", "components"] });
    const indexes = req.template.components.flatMap((c) => (c.type === "button" ? [c.index] : []));
    if (new Set(indexes).size !== indexes.length) ctx.addIssue({ code: "custom", message: "button indexes must be unique", path: ["template", "components"] });
  }) satisfies z.ZodType<CloudApiTemplateRequest, unknown>;

/** Where the first problem is, as a field path: safe to log and to put in an error message. */
export function firstIssuePath(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return "(root)";
  const path = issue.path.length > 0 ? issue.path.map(String).join(".") : "(root)";
  return `${path}: ${issue.message}`;
}

/** 2xx body of POST /messages (§2.2). Loose, so new fields never break parsing. */
export const sendResponseSchema = z.looseObject({
  messaging_product: z.string().optional(),
  contacts: z.array(z.looseObject({ input: z.string().optional(), wa_id: z.string().optional() })).optional(),
  messages: z.array(z.looseObject({ id: z.string().min(1), message_status: z.string().optional() })).min(1),
});

/** Meta's error envelope (§7.1). `code` is what we classify on; `message` and `details` are never logged. */
export const errorEnvelopeSchema = z.looseObject({
  error: z.looseObject({
    code: z.number().int(),
    type: z.string().optional(),
    message: z.string().optional(),
    error_subcode: z.number().int().optional(),
    error_data: z.looseObject({ details: z.string().optional() }).optional(),
    fbtrace_id: z.string().optional(),
  }),
});

/** GET /{phone-number-id}?fields=quality_rating,throughput (§7.4 health probe). */
export const phoneNumberHealthSchema = z.looseObject({
  id: z.string().optional(),
  quality_rating: z.string().optional(),
  throughput: z.looseObject({ level: z.string().optional() }).optional(),
});
