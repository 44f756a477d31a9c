import type { Logger } from "pino";
import { AppError } from "../shared/app-error.js";
import { shortHash } from "../shared/ids.js";
import type { Metrics } from "../shared/metrics.js";
import type { JobData } from "./jobs.js";
import { hashPhone, hashUserId } from "./opt-out.js";
import type { Queues } from "./queues.js";
import { statusBatchJobId, statusBatchSize } from "./status-updates.js";
import type { TemplateGovernance } from "./template-governance.js";
import { hasValidSignature } from "./whatsapp/webhook-signature.js";
import { parseWebhook, type InboundMessage, type Keywords } from "./whatsapp/webhook.schema.js";

export interface WebhookIntakeDeps {
  queues: Queues;
  metrics: Metrics;
  appSecret: string | undefined;
  phoneNumberId: string | undefined;
  /** Opt-out and opt-in words (whatsapp.keywords); Meta's defaults when not given. */
  keywords?: Keywords;
  /** Template status/category/quality webhooks: holds and alerts, applied before we answer. */
  governance: TemplateGovernance;
}

/** Quick-reply payloads we set at send time look like "fn1:CONFIRM:<token>"; labels are a fallback. */
export function replyAction(message: InboundMessage): JobData<"inbound-message">["action"] {
  if (message.optOut) return "opt-out";
  if (message.optIn) return "opt-in";
  const payload = (message.buttonPayload ?? "").toUpperCase();
  if (/(^|:)CONFIRM(:|$)/.test(payload) || payload === "CONFIRMAR") return "confirm";
  if (/(^|:)RESCHEDULE(:|$)/.test(payload) || payload === "CAMBIAR HORARIO") return "reschedule";
  return "other";
}

/**
 * Meta's webhook: verify the signature over the raw bytes, then parse, then queue the statuses in
 * jobs of up to 100 (applied together: one job's overhead instead of a hundred) and one small job
 * per inbound message. 200 only after the jobs are in Redis: Meta retries otherwise.
 */
export function createWebhookIntake(deps: WebhookIntakeDeps) {
  return async function accept(raw: Uint8Array, signature: string | undefined, fromLoopback: boolean, receivedAt: string, log: Logger): Promise<number> {
    if (deps.appSecret !== undefined) {
      if (!hasValidSignature(raw, signature, deps.appSecret)) throw new AppError("security", "X-Hub-Signature-256 does not match the request body");
    } else if (!fromLoopback) {
      // Without an app secret nobody can prove a webhook came from Meta: accept only local test traffic.
      throw new AppError("security", "WHATSAPP_APP_SECRET is not set; webhooks are accepted only on loopback");
    }
    const parsed = parseWebhook(new TextDecoder().decode(raw), deps.phoneNumberId, deps.keywords);
    const statuses = parsed.statuses.map(
      (s): JobData<"apply-status"> => ({
        wamid: s.wamid,
        status: s.status,
        timestamp: s.timestamp,
        ...(s.callbackData !== undefined ? { callbackData: s.callbackData } : {}),
        ...(s.errorCode !== undefined ? { errorCode: s.errorCode } : {}),
        ...(s.userId !== undefined ? { userHash: hashUserId(s.userId) } : {}),
        ...(s.pricing !== undefined ? { pricing: s.pricing } : {}),
      }),
    );
    const statusJobs: { data: JobData<"apply-statuses">; options: { jobId: string } }[] = [];
    for (let from = 0; from < statuses.length; from += statusBatchSize) {
      const batch = statuses.slice(from, from + statusBatchSize);
      statusJobs.push({ data: { statuses: batch }, options: { jobId: statusBatchJobId(batch) } });
    }
    const inboundJobs = parsed.inbound.map((m) => {
      const data: JobData<"inbound-message"> = {
        inboundId: m.id,
        action: replyAction(m),
        receivedAt,
        ...(m.contextWamid !== undefined ? { contextWamid: m.contextWamid } : {}),
        ...(m.from !== undefined ? { fromHash: hashPhone(m.from) } : {}),
        ...(m.userId !== undefined ? { userHash: hashUserId(m.userId) } : {}),
        ...(m.timestamp !== undefined ? { sentAt: m.timestamp } : {}),
      };
      return { data, options: { jobId: `in_${shortHash(m.id)}` } };
    });
    try {
      // Applied before the 200, not queued: a template Meta paused must stop sends at once, and a
      // Redis failure here answers 503 so Meta retries the whole POST (every step is idempotent).
      for (const event of parsed.templates) await deps.governance.apply(event, receivedAt);
      if (statusJobs.length > 0) await deps.queues.enqueueBulk("apply-statuses", statusJobs);
      if (inboundJobs.length > 0) await deps.queues.enqueueBulk("inbound-message", inboundJobs);
    } catch (err) {
      throw new AppError("transient", "webhook queue unavailable; retry later", undefined, { "retry-after": "5" }, { cause: err });
    }
    deps.metrics.webhookEvents.inc({ kind: "status" }, statuses.length);
    deps.metrics.webhookEvents.inc({ kind: "inbound" }, inboundJobs.length);
    deps.metrics.webhookEvents.inc({ kind: "template" }, parsed.templates.length);
    deps.metrics.webhookEvents.inc({ kind: "ignored" }, parsed.ignoredOtherNumber + parsed.ignoredOther);
    log.info({ statuses: statuses.length, inbound: inboundJobs.length, templates: parsed.templates.length, ignored: parsed.ignoredOtherNumber + parsed.ignoredOther }, "webhook accepted");
    return statuses.length + inboundJobs.length;
  };
}

export type WebhookIntake = ReturnType<typeof createWebhookIntake>;
