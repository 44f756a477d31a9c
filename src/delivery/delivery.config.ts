import { z } from "zod";
import { isTimeZone } from "../shared/time-zone.js";

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "must be HH:MM (24-hour)");


const quietHoursSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** Local time the send window opens ("HH:MM"). */
    start: hhmm.default("08:00"),
    /** Local time the send window closes, exclusive. A start after the end crosses midnight. */
    end: hhmm.default("21:00"),
    /**
     * IANA zone for the window when the source does not name one. No default on purpose:
     * silently using UTC would send at night in most of the world.
     */
    timeZone: z.string().refine(isTimeZone, "must be an IANA time zone").optional(),
  })
  .refine((w) => w.start !== w.end, { message: "start and end must differ", path: ["end"] });

const rateLimitsSchema = z.strictObject({
  /**
   * Token bucket per business phone number. Meta allows 80 messages/s per number by default,
   * inbound included (whatsapp-cloud-api.md §8); lower it to keep head-room.
   */
  perSenderPerSecond: z.number().int().positive().max(1000).default(80),
  /** Meta's pair rate: one message per 6 s to the same user (§8, error 131056). */
  perRecipientSeconds: z.number().positive().max(3600).default(6),
});

const messagingBudgetSchema = z.strictObject({
  /**
   * Unique recipients per rolling 24 h across every worker, kept below the business portfolio's
   * messaging limit (Meta's tiers: 250, 2,000, 10,000, 100,000, unlimited; §8). A new recipient
   * past it waits for a free slot (a reminder still ends at its not-after). Unset: no budget.
   */
  uniqueRecipientsPer24h: z.number().int().positive().optional(),
  /** Share of the budget at which an alert (log event + metric) fires, once per 24 h. */
  alertAtRatio: z.number().gt(0).max(1).default(0.8),
});

const retriesSchema = z.strictObject({
  attempts: z.number().int().min(1).max(20).default(6),
  /** Base of the exponential backoff between transient failures. */
  backoffMs: z.number().int().positive().default(2000),
});

const reminderNotAfterSchema = z.strictObject({
  /**
   * A reminder is not sent after (appointment start − this many minutes). 0 means the
   * reminder must not go out once the appointment has started.
   */
  minutesBeforeStart: z.number().int().min(0).max(7 * 24 * 60).default(0),
});

export const deliveryConfigSchema = z.strictObject({
  quietHours: quietHoursSchema.prefault({}),
  rateLimits: rateLimitsSchema.prefault({}),
  retries: retriesSchema.prefault({}),
  messagingBudget: messagingBudgetSchema.prefault({}),
  reminderNotAfter: reminderNotAfterSchema.prefault({}),
  /**
   * A message WhatsApp accepted but never reported delivered is assumed dropped once its template's
   * time-to-live (30 days when the template sets none) plus this buffer has passed (§2.3, §5.3).
   */
  expiryBufferMinutes: z.number().int().min(0).max(7 * 24 * 60).default(60),
  /** How long to wait for a webhook after a send whose outcome is unknown (§10.4). */
  unknownOutcomeWindowMinutes: z.number().int().positive().max(24 * 60).default(10),
  /**
   * BullMQ stops deduplicating a jobId once the job is removed, so completed jobs are kept longer
   * than a duplicate FHIR notification can plausibly arrive (servers retry for hours).
   */
  keepCompletedJobsHours: z.number().int().positive().default(72),
  /**
   * Finished send and write-back jobs are not deduplication keys (the ledger decides a repeat),
   * so they stay only this long, for inspection in Bull Board; 0 removes them when done.
   */
  keepFinishedSendJobsMinutes: z.number().int().min(0).max(7 * 24 * 60).default(60),
  /**
   * How long a delivery's ledger record (state, wamid index, status history) is kept after its last
   * milestone (decided, or the scheduled send, then WhatsApp's acceptance). It must outlast the
   * template TTL (30 days when none is set) plus expiryBufferMinutes, so the expiry check and late
   * statuses still find it; the audit trail itself is the Communications on the FHIR server.
   */
  ledgerRetentionDays: z.number().int().min(1).max(3650).default(35),
});

export type DeliveryConfig = z.output<typeof deliveryConfigSchema>;
export type RateLimitConfig = DeliveryConfig["rateLimits"];

/** The last moment a reminder for an appointment starting at `appointmentStart` may be sent. */
export function reminderDeadline(appointmentStart: Date, cfg: DeliveryConfig["reminderNotAfter"]): Date {
  return new Date(appointmentStart.getTime() - cfg.minutesBeforeStart * 60_000);
}
