import type { LedgerRecord } from "../delivery/ledger.js";
import { groupOf } from "../delivery/timeline-index.js";
import { classify } from "../delivery/whatsapp/status.map.js";
import type { SendFailure } from "../delivery/whatsapp/whatsapp.port.js";
import { Layout } from "./layout.js";
import { groupTone, groupWords, reasonWords, stateWords, when } from "./words.js";

const failureWords: Record<SendFailure, string> = {
  "rate-limited": "WhatsApp throttled the send",
  transient: "WhatsApp had a temporary problem",
  recipient: "WhatsApp could not deliver to this recipient",
  template: "WhatsApp refused the template or its parameters",
  "halt-sender": "the WhatsApp account or token needs attention",
  unknown: "WhatsApp answered with an error code fhir-notify does not know",
};

/** One sentence that answers "why (not) sent?" from the ledger's codes alone. */
export function verdict(r: LedgerRecord): string {
  const code = r.vendorCode !== undefined ? ` (WhatsApp code ${r.vendorCode}: ${failureWords[classify(r.vendorCode)]})` : "";
  switch (r.state) {
    case "not-done": {
      const why = r.reason !== undefined ? reasonWords[r.reason] : "no reason was recorded";
      // Names only (slot, guard rule, element), never the value the guard stopped.
      const guard = r.phiGuard !== undefined ? ` (slot ${r.phiGuard.slot}, guard rule ${r.phiGuard.rule}${r.phiGuard.element !== undefined ? `, element ${r.phiGuard.element}` : ""})` : "";
      const slot = r.missingSlot !== undefined ? ` (slot ${r.missingSlot})` : guard;
      return `Not sent: ${why}${slot}.${code}`;
    }
    case "failed":
      return `WhatsApp accepted it but could not deliver it${code}.`;
    case "expired":
      return "WhatsApp accepted it, then reported no delivery within the message's time-to-live.";
    case "held":
      return `Waiting: WhatsApp took the template out of use${r.templateHold !== undefined ? ` (${r.templateHold})` : ""}; it is sent if the template comes back in time.`;
    case "queued":
      return r.deadLettered === true
        ? "Waiting in the dead-letter queue: every attempt failed. Replay it from Operations once the cause is fixed."
        : r.scheduledFor !== undefined
          ? `Waiting for its send time, ${when(r.scheduledFor)}.`
          : "Waiting to be sent.";
    case "dispatching":
    case "unknown":
    case "accepted":
    case "sent":
    case "delivered":
    case "read":
      return `${stateWords[r.state][0]!.toUpperCase()}${stateWords[r.state].slice(1)}.`;
  }
}

/**
 * One notification's life as the ledger holds it: the decision, each status and its reason in plain
 * words, the Communication and the resource it is about. The rendered text is left out on purpose
 * (the Communication on the FHIR server holds it, behind that server's access rules).
 */
export function NotificationPage({ record: r, communicationUrl }: { record: LedgerRecord; communicationUrl: string | undefined }) {
  const g = groupOf(r.state);
  const steps = [...r.history].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  return (
    <Layout title={`Notification ${r.deliveryId}`} here="timeline">
      <p>
        <a href="/console">← Timeline</a>
      </p>
      <h1>
        Notification <span class="mono">{r.deliveryId}</span>
      </h1>
      <div class={`notice ${g === "delivered" || g === "read" ? "good" : g === "failed" || g === "not-done" ? "bad" : ""}`} data-verdict>
        <span class={`state ${groupTone[g]}`}>{groupWords[g]}</span> {verdict(r)}
        {r.reasonDetail !== undefined && <div class="muted">Detail: {r.reasonDetail}</div>}
      </div>
      <div class="grid2">
        <section class="card">
          <h2>What it is</h2>
          <dl class="facts">
            <dt>Rule</dt>
            <dd class="mono">{r.ruleId}</dd>
            <dt>Template</dt>
            <dd class="mono">
              {r.templateName}
              {r.languageCode !== undefined ? ` (${r.languageCode})` : ""}
            </dd>
            <dt>Kind</dt>
            <dd>{r.category === "reminder" ? "reminder (sent at a set time before)" : "notification (sent when the change happens)"}</dd>
            <dt>About</dt>
            <dd class="mono">
              {r.resourceRef}
              {r.resourceVersion !== undefined ? ` (version ${r.resourceVersion})` : ""}
            </dd>
            {r.patientRef !== undefined && (
              <>
                <dt>Patient</dt>
                <dd class="mono">{r.patientRef}</dd>
              </>
            )}
            <dt>Source</dt>
            <dd class="mono">{r.source}</dd>
            <dt>Communication</dt>
            <dd>{communicationUrl !== undefined ? <a href={communicationUrl}>{`Communication/${r.communicationId ?? ""}`}</a> : <span class="muted">not written yet</span>}</dd>
            {r.wamid !== undefined && (
              <>
                <dt>WhatsApp message id</dt>
                <dd class="mono">{r.wamid}</dd>
              </>
            )}
            {r.dryRun === true && (
              <>
                <dt>Mode</dt>
                <dd>dry run: nothing left this machine</dd>
              </>
            )}
            {r.pricing !== undefined && (
              <>
                <dt>Pricing</dt>
                <dd>{[r.pricing.category, r.pricing.model, r.pricing.type].filter((v) => v !== undefined).join(" · ")}</dd>
              </>
            )}
          </dl>
        </section>
        <section class="card">
          <h2>Its life</h2>
          <ol class="steps">
            <li>
              <b>{when(r.createdAt)}</b> — rule <span class="mono">{r.ruleId}</span> matched a change to <span class="mono">{r.resourceRef}</span> and decided to send{" "}
              <span class="mono">{r.templateName}</span>
              {r.scheduledFor !== undefined ? `, at ${when(r.scheduledFor)}` : ""}.
            </li>
            {steps.map((e) => (
              <li data-step={e.state}>
                <b>{when(e.at)}</b> — {stateWords[e.state]}
                {e.code !== undefined ? ` (WhatsApp code ${e.code}: ${failureWords[classify(e.code)]})` : ""}
                {e.state === "not-done" && r.reason !== undefined ? `: ${reasonWords[r.reason]}` : ""}.
              </li>
            ))}
            {r.deadLettered === true && <li>Every attempt failed; the job waits in the dead-letter queue.</li>}
          </ol>
          <p class="muted">Last change {when(r.updatedAt)}. Times are UTC.</p>
        </section>
      </div>
    </Layout>
  );
}
