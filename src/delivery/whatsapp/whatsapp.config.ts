import { z } from "zod";
import type { TemplateCatalogConfig } from "./template-catalog.js";
import { defaultOptInKeywords, defaultOptOutKeywords } from "./webhook.schema.js";

const words = z.array(z.string().trim().min(1).max(40)).min(1).max(50);

/**
 * The WhatsApp slice of the configuration. Without phoneNumberId + accessToken the service runs
 * the dry-run outbox instead of the Cloud API (whatsapp-cloud-api.md §10.5).
 */
export const whatsappConfigSchema = z
  .object({
    /** WHATSAPP_PHONE_NUMBER_ID: the sending business phone number id (digits). */
    phoneNumberId: z.string().regex(/^\d{1,32}$/, "must be the numeric phone number id").optional(),
    /** WHATSAPP_ACCESS_TOKEN: system user access token. */
    accessToken: z.string().min(1).optional(),
    /** WHATSAPP_BUSINESS_ACCOUNT_ID: the WABA that owns the templates (`templates compare` reads them). */
    businessAccountId: z.string().regex(/^\d{1,32}$/, "must be the numeric WhatsApp Business Account id").optional(),
    /** WHATSAPP_APP_SECRET: the app secret that signs webhooks (X-Hub-Signature-256). */
    appSecret: z.string().min(1).optional(),
    /** WHATSAPP_VERIFY_TOKEN: the token Meta echoes in the GET verification handshake. */
    verifyToken: z.string().min(1).optional(),
    /** WHATSAPP_API_BASE: Graph API origin; tests point it at a loopback fake. */
    apiBase: z.url({ protocol: /^https?$/ }).default("https://graph.facebook.com"),
    /** WHATSAPP_GRAPH_VERSION: pinned, because an unversioned URL silently follows Meta's newest version. */
    graphVersion: z.string().regex(/^v\d+\.0$/, "must look like v23.0").default("v23.0"),
    /** Generous on purpose: a timeout after the request left makes the outcome unknown (§10.4). */
    timeoutMs: z.coerce.number().int().min(100).max(120_000).default(15_000),
    /**
     * Whole-message words (any language; compared without case or accents) that opt a patient out
     * of WhatsApp messages, and that undo it. The latest of the two a patient sent wins.
     */
    keywords: z
      .object({ optOut: words.default([...defaultOptOutKeywords]), optIn: words.default([...defaultOptInKeywords]) })
      .strict()
      .prefault({}),
  })
  .strict()
  .refine((c) => (c.phoneNumberId === undefined) === (c.accessToken === undefined), {
    message: "phoneNumberId and accessToken must be set together",
    path: ["accessToken"],
  });

export type WhatsAppConfig = z.output<typeof whatsappConfigSchema>;

/** The credentials the live client needs, present only when both are configured. */
export function liveCredentials(
  cfg: WhatsAppConfig,
): { apiBase: string; graphVersion: string; phoneNumberId: string; accessToken: string; timeoutMs: number } | undefined {
  if (cfg.phoneNumberId === undefined || cfg.accessToken === undefined) return undefined;
  return { apiBase: cfg.apiBase, graphVersion: cfg.graphVersion, phoneNumberId: cfg.phoneNumberId, accessToken: cfg.accessToken, timeoutMs: cfg.timeoutMs };
}

/** What `templates compare` needs to read Meta's template list; undefined when it is not configured. */
export function templateCatalogConfig(cfg: WhatsAppConfig): TemplateCatalogConfig | undefined {
  if (cfg.businessAccountId === undefined || cfg.accessToken === undefined) return undefined;
  return { apiBase: cfg.apiBase, graphVersion: cfg.graphVersion, businessAccountId: cfg.businessAccountId, accessToken: cfg.accessToken, timeoutMs: cfg.timeoutMs };
}
