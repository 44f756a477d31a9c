import { randomUUID } from "node:crypto";
import type { Clock } from "../../shared/clock.js";
import type { Logger } from "../../shared/logger.js";
import { toCloudApiRequest, type CloudApiTemplateRequest } from "./cloud-api.request.js";
import { cloudApiTemplateRequestSchema, firstIssuePath } from "./cloud-api.schema.js";
import { SendError, type SendResult, type WhatsAppSender } from "./whatsapp.port.js";
import type { TemplateMessage } from "../../shared/template-message.js";
import type { StatusUpdate } from "./webhook.schema.js";

export interface OutboxEntry {
  /** ISO instant the send was recorded. */
  at: string;
  wamid: string;
  /** Exactly the JSON the Cloud API would have received. */
  request: CloudApiTemplateRequest;
}

export interface DryRunOutboxOptions {
  clock: Clock;
  /** Entries kept in memory, oldest dropped first. */
  capacity?: number;
  /** Receives synthesised "sent" then "delivered" updates, as the webhook would deliver them. */
  onStatus?: (u: StatusUpdate) => void | Promise<void>;
  statusDelayMs?: number;
  log?: Logger;
}

/**
 * The sender used when no WhatsApp credentials are configured (whatsapp-cloud-api.md §10.5): the
 * same validation as the live client, no network, the exact request kept for inspection, and
 * synthetic statuses so the rest of the pipeline (ledger, audit) behaves as in production.
 */
export function createDryRunOutbox(opts: DryRunOutboxOptions): WhatsAppSender & { list(): OutboxEntry[]; close(): void } {
  const capacity = Math.max(1, opts.capacity ?? 1000);
  const statusDelayMs = Math.max(0, opts.statusDelayMs ?? 200);
  const entries: OutboxEntry[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  function emit(update: StatusUpdate): Promise<void> {
    if (opts.onStatus === undefined) return Promise.resolve();
    return Promise.resolve()
      .then(() => opts.onStatus?.(update))
      .catch((err: unknown) => opts.log?.warn({ err, wamid: update.wamid }, "dry-run status handler failed"));
  }

  function scheduleStatuses(wamid: string, callbackData: string): void {
    if (opts.onStatus === undefined || closed) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      const at = () => opts.clock.now().toISOString();
      void emit({ wamid, status: "sent", timestamp: at(), callbackData }).then(() =>
        closed ? undefined : emit({ wamid, status: "delivered", timestamp: at(), callbackData }),
      );
    }, statusDelayMs);
    // A pending synthetic status must never keep the process alive at shutdown.
    timer.unref();
    timers.add(timer);
  }

  function sendTemplate(msg: TemplateMessage): Promise<SendResult> {
    const parsed = cloudApiTemplateRequestSchema.safeParse(toCloudApiRequest(msg));
    if (!parsed.success) return Promise.reject(new SendError("template", `template request is invalid at ${firstIssuePath(parsed.error)}`));
    const wamid = `wamid.dryrun.${randomUUID()}`;
    entries.push({ at: opts.clock.now().toISOString(), wamid, request: structuredClone(parsed.data) });
    if (entries.length > capacity) entries.splice(0, entries.length - capacity);
    opts.log?.info({ wamid, template: msg.templateName, callbackData: msg.callbackData }, "dry-run message recorded");
    scheduleStatuses(wamid, msg.callbackData);
    return Promise.resolve({ wamid, messageStatus: "accepted" });
  }

  return {
    mode: "dry-run",
    sendTemplate,
    list: () => entries.map((e) => structuredClone(e)),
    close: () => {
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}
