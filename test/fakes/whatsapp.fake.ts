import type { AcceptedStatus, SendError, SendResult, WhatsAppSender } from "../../src/delivery/whatsapp/whatsapp.port.js";
import type { TemplateMessage } from "../../src/shared/template-message.js";

/**
 * In-memory WhatsAppSender for unit tests of the delivery pipeline (style.md rule 10). Push
 * SendErrors onto failNext to script failures (first in, first thrown); set nextStatus to make the
 * next accepts come back held or paused.
 */
export class FakeWhatsApp implements WhatsAppSender {
  readonly mode: "live" | "dry-run";
  /** Messages that were accepted, in order. */
  readonly sent: TemplateMessage[] = [];
  /** Every call, including the ones that failed. */
  readonly attempts: TemplateMessage[] = [];
  readonly failNext: SendError[] = [];
  /** Scripted failures for one recipient (E.164 as in TemplateMessage.to), applied before failNext. */
  readonly failFor = new Map<string, SendError[]>();
  nextStatus: AcceptedStatus = "accepted";
  private readonly waiters: ((msg: TemplateMessage) => void)[] = [];

  constructor(mode: "live" | "dry-run" = "live") {
    this.mode = mode;
  }

  sendTemplate(msg: TemplateMessage): Promise<SendResult> {
    this.attempts.push(msg);
    const err = this.failFor.get(msg.to)?.shift() ?? this.failNext.shift();
    if (err !== undefined) return Promise.reject(err);
    const n = this.sent.push(msg);
    for (const w of this.waiters.splice(0)) w(msg);
    return Promise.resolve({ wamid: `wamid.fake-${n}`, waId: msg.to.replace(/^\+/, ""), messageStatus: this.nextStatus });
  }

  /** Resolves with the next accepted message: a way to wait without sleeping. */
  nextSent(): Promise<TemplateMessage> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  sentTo(to: string): number {
    return this.sent.filter((m) => m.to === to).length;
  }
}
