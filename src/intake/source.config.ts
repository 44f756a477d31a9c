import { z } from "zod";
import { triggerTypes } from "../shared/trigger-type.js";

/**
 * Secrets travel in `channel.header` strings. Medplum splits those on every ":" (reference §2.4),
 * so secrets are limited to RFC 6750 token68 characters, which never contain a colon.
 */
const secretValue = z
  .string()
  .min(16, "must be at least 16 characters")
  .regex(/^[A-Za-z0-9._~+/-]+=*$/, "may only contain A-Z a-z 0-9 . _ ~ + / - (and trailing =)");

const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, "must be an HTTP header name")
  .transform((n) => n.toLowerCase());

const authSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("none") }).strict(),
  z.object({ type: z.literal("bearer"), token: secretValue }).strict(),
  z.object({ type: z.literal("header"), name: headerName, value: secretValue }).strict(),
  z.object({ type: z.literal("hmac"), header: headerName.default("x-signature"), secret: z.string().min(16, "must be at least 16 characters") }).strict(),
]);

const subscriptionSchema = z
  .object({
    style: z.enum(["r4-rest-hook", "backport-r4", "none"]).default("none"),
    payload: z.enum(["full-resource", "id-only", "empty"]).default("id-only"),
    topicUrl: z.url().optional(),
    heartbeatSeconds: z.number().int().positive().optional(),
    /**
     * The status `subscriptions sync` creates Subscriptions in. R4 says a client asks with
     * `requested` and the server activates (HAPI does); Medplum delivers only `active` ones and never
     * activates, so they must be created `active`. Unset: `active` when the server's
     * CapabilityStatement names Medplum (or the source checks Medplum's HMAC signature), else `requested`.
     */
    initialStatus: z.enum(["active", "requested"]).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    // Classic R4 knows only "payload or no payload"; id-only exists only for topic-based subscriptions.
    if (s.style === "r4-rest-hook" && s.payload === "id-only") {
      ctx.addIssue({ code: "custom", path: ["payload"], message: "r4-rest-hook supports full-resource or empty" });
    }
    if (s.style === "backport-r4" && s.topicUrl === undefined) {
      ctx.addIssue({ code: "custom", path: ["topicUrl"], message: "is required for backport-r4 (topics are published by the server)" });
    }
  });

export const sourceConfigSchema = z
  .object({
    fhirVersion: z.enum(["R4", "R4B", "R5"]).optional(),
    mode: z.enum(["push", "poll"]).default("push"),
    pollIntervalSeconds: z.number().int().min(1).default(60),
    auth: authSchema,
    resourceTypes: z.array(z.enum(triggerTypes)).min(1).default(["Appointment", "MedicationDispense", "MedicationRequest", "DiagnosticReport"]),
    /** accept: an authentic notification about another type gets 200 and is counted; reject: 400. */
    unhandledTypes: z.enum(["accept", "reject"]).default("accept"),
    /** Operator's statement that this source sits on a trusted network path. Intake auth does not relax for it. */
    trusted: z.boolean().default(false),
    subscription: subscriptionSchema.default({ style: "none", payload: "id-only" }),
    /** Catch-up searches start this far before the cursor, for transactions that commit late (reference §7). */
    overlapSeconds: z.number().int().min(0).max(3600).default(120),
    recoverWith: z.enum(["$events", "search"]).default("search"),
    /**
     * Catch-up passes also read `[Type]/_history?_since=` to find deletes, which a search cannot
     * return. Only for servers with type-level history (HAPI, Smile CDR, Azure); without it deletes
     * are seen through status (cancelled, entered-in-error) only.
     */
    historyDeletes: z.boolean().default(false),
    /**
     * A push source from which no notification was processed for this long is caught up by search,
     * and again at every check while the silence lasts (a quiet night costs a search per check). Unset:
     * catch-up runs on start and after a notification refused with 503 only.
     */
    silenceCatchUpSeconds: z.number().int().min(30).max(86_400).optional(),
    /** A proven gap in topic event numbers waits this long for late, out-of-order events before recovery (reference §5.6). */
    gapGraceSeconds: z.number().min(0).max(600).default(5),
  })
  .strict();

export type SourceConfig = z.output<typeof sourceConfigSchema>;
