import { z } from "zod";

const base = "https://fhir-notify.dev";

/**
 * How Communications and reply resources are labelled. One object per FHIR source, because the
 * `medium` code a server accepts differs (fhir-notifications.md §10.3).
 */
export const auditConfigSchema = z.strictObject({
  /** Identifier system for our idempotency key (the delivery id); used in If-None-Exist. */
  identifierSystem: z.url().default(`${base}/sid/notification-key`),
  /** Identifier system for the outbound WhatsApp message id (wamid). */
  wamidSystem: z.url().default(`${base}/sid/whatsapp-message-id`),
  /** Identifier system for an inbound WhatsApp message id (a patient's reply). */
  inboundIdSystem: z.url().default(`${base}/sid/whatsapp-inbound-id`),
  /**
   * v3 ParticipationMode code. APPWRIT ("messaging app") is the precise one, but it is newer than
   * the terminology bundled with R4 4.0.1; use WRITTEN for servers that reject it.
   */
  medium: z.enum(["APPWRIT", "WRITTEN"]).default("APPWRIT"),
  /** Base URL of our extensions; each extension URL is this plus a name. */
  extensionBase: z
    .url()
    .refine((url) => url.endsWith("/"), "must end with /")
    .default(`${base}/fhir/StructureDefinition/`),
  /** Code system of the meta.tag that marks resources written in dry-run mode (§10.5). */
  tagSystem: z.url().default(`${base}/fhir/CodeSystem/tag`),
});

export type AuditOptions = z.output<typeof auditConfigSchema>;
