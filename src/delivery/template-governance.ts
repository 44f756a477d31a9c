import type { Logger } from "pino";
import type { Metrics } from "../shared/metrics.js";
import type { TemplateHoldCode, TemplateHolds } from "./template-holds.js";
import type { TemplateEvent } from "./whatsapp/webhook.schema.js";

/**
 * What Meta's template webhooks mean for sending (whatsapp-cloud-api.md §3.1, §3.5, §7.4):
 *
 * - message_template_status_update: PAUSED, DISABLED, REJECTED, PENDING_DELETION, DELETED and
 *   ARCHIVED hold the template; APPROVED, REINSTATED and UNPAUSED lift a status hold. Other events
 *   (FLAGGED, IN_APPEAL, LIMIT_EXCEEDED, LOCKED, ...) only alert. An event that names a category
 *   other than UTILITY also holds it as not-utility (since Apr 2025 Meta approves a utility
 *   submission it judges promotional as MARKETING instead of rejecting it).
 * - template_category_update: a completed change to anything but UTILITY holds the template
 *   (patient logistics must not go out as marketing); a change back to UTILITY lifts that hold.
 *   The advance notice (correct_category, about 24 h before) only alerts: until Meta changes it the
 *   template is still utility, and the operator can ask for a review.
 * - message_template_quality_update: YELLOW or RED alerts; pausing, if it follows, comes as a
 *   status event.
 *
 * Every decision is an alert: a log event plus fhir_notify_template_alerts_total.
 */

type Action = { hold: TemplateHoldCode } | { lift: true } | { alertOnly: string } | { ignore: true };

function statusAction(event: string): Action {
  switch (event) {
    case "PAUSED":
      return { hold: "paused" };
    case "DISABLED":
      return { hold: "disabled" };
    case "REJECTED":
      return { hold: "rejected" };
    case "PENDING_DELETION":
      return { hold: "pending-deletion" };
    case "DELETED":
      return { hold: "deleted" };
    case "ARCHIVED":
      return { hold: "archived" };
    case "APPROVED":
    case "REINSTATED":
    case "UNPAUSED":
    case "UNARCHIVED":
      return { lift: true };
    case "PENDING":
    case "NONE":
      return { ignore: true };
    default:
      // FLAGGED (will be disabled unless quality improves), IN_APPEAL, LIMIT_EXCEEDED, LOCKED, and
      // whatever Meta adds: the template may still be sendable, so nothing is held, but someone looks.
      return { alertOnly: "status-notice" };
  }
}

export interface TemplateGovernanceDeps {
  holds: Pick<TemplateHolds, "apply">;
  /** Names in mappings/templates; others are counted as "other" so a metric label stays bounded. */
  knownTemplates: ReadonlySet<string>;
  metrics: Metrics;
  log: Logger;
}

export function createTemplateGovernance(deps: TemplateGovernanceDeps) {
  const label = (name: string) => (deps.knownTemplates.has(name) ? name : "other");
  const alert = (e: TemplateEvent, kind: string, fields: Record<string, unknown>, message: string) => {
    deps.metrics.templateAlerts.inc({ template: label(e.templateName), kind });
    deps.log.warn({ event: `template-${kind}`, template: e.templateName, language: e.languageCode, ...fields }, message);
  };

  async function applyHold(e: TemplateEvent, kind: "status" | "category", action: { hold: TemplateHoldCode } | { lift: true }, at: string): Promise<void> {
    const hold = "hold" in action ? { code: action.hold, since: at } : undefined;
    const applied = await deps.holds.apply(e.templateName, e.languageCode, kind, hold, at);
    if (applied === "unchanged") return;
    if (applied === "stale") {
      deps.log.info({ event: "template-event-stale", template: e.templateName, language: e.languageCode }, "template webhook older than the last one applied; ignored");
      return;
    }
    if (hold !== undefined) alert(e, "held", { hold: hold.code }, "WhatsApp took a template out of use; its messages are held");
    else alert(e, "released", { kind }, "template hold lifted");
  }

  return {
    /** Apply one template webhook; `receivedAt` orders events that carry no entry.time. */
    async apply(e: TemplateEvent, receivedAt: string): Promise<void> {
      const at = e.at ?? receivedAt;
      switch (e.kind) {
        case "status": {
          const action = statusAction(e.event);
          if ("hold" in action || "lift" in action) await applyHold(e, "status", action, at);
          else if ("alertOnly" in action) alert(e, action.alertOnly, { status: e.event }, "template status changed at WhatsApp");
          if (e.category !== undefined) await applyHold(e, "category", e.category === "UTILITY" ? { lift: true } : { hold: "not-utility" }, at);
          return;
        }
        case "category": {
          if (e.correctCategory !== undefined && e.previousCategory === undefined) {
            alert(e, "category-pending", { correctCategory: e.correctCategory, ...(e.effectiveAt !== undefined ? { effectiveAt: e.effectiveAt } : {}) }, "WhatsApp will recategorise a template");
            return;
          }
          if (e.newCategory === undefined) return;
          await applyHold(e, "category", e.newCategory === "UTILITY" ? { lift: true } : { hold: "not-utility" }, at);
          return;
        }
        case "quality": {
          if (e.newScore === "YELLOW" || e.newScore === "RED") alert(e, "quality", { score: e.newScore, ...(e.previousScore !== undefined ? { previousScore: e.previousScore } : {}) }, "template quality dropped");
          return;
        }
      }
    },
  };
}

export type TemplateGovernance = ReturnType<typeof createTemplateGovernance>;
