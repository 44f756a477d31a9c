import type { PreviewResult, PreviewRule } from "../delivery/preview.js";
import { Layout } from "./layout.js";
import { reasonWords, when } from "./words.js";

/** What the form was given: pasted JSON, or a type and id to read from the FHIR server. */
export interface PreviewForm {
  json?: string;
  type?: string;
  id?: string;
}

function RuleResult({ rule }: { rule: PreviewRule }) {
  if (!rule.fired)
    return (
      <li data-rule={rule.ruleId} data-fired="no">
        <span class="mono">{rule.ruleId}</span>: does not apply ({rule.why}).
      </li>
    );
  if (rule.action === "cancel-pending")
    return (
      <li data-rule={rule.ruleId} data-fired="cancel">
        <span class="mono">{rule.ruleId}</span>: would cancel waiting messages of {rule.cancels.join(", ")}.
      </li>
    );
  return (
    <li data-rule={rule.ruleId} data-fired="send">
      <span class="mono">{rule.ruleId}</span>: would send <span class="mono">{rule.templateName}</span> ({rule.category}){" "}
      {rule.sendAt !== undefined ? `at ${when(rule.sendAt)}` : "now"}.
      {rule.outcome.ok ? (
        <>
          <div class="message" data-rendered>
            {rule.outcome.renderedText}
          </div>
          <div class="muted">
            Language {rule.outcome.languageCode}, times in {rule.outcome.timeZone}. The recipient's number is not shown here.
          </div>
        </>
      ) : (
        <div class="notice bad">
          But it would not be sent: {reasonWords[rule.outcome.reason]}
          {rule.outcome.missingSlot !== undefined ? ` (slot ${rule.outcome.missingSlot})` : ""}. {rule.outcome.detail}
        </div>
      )}
    </li>
  );
}

/**
 * Paste a resource or name one on the FHIR server: which rules fire, why the others do not, and the
 * message each would send. Nothing is sent or stored. The pasted JSON is not echoed back after a
 * preview (it may hold clinical text); the sandbox example can be loaded again with one click.
 */
export function PreviewPage(props: { form: PreviewForm; result?: PreviewResult; problem?: string; hasExample: boolean }) {
  const sent = props.result?.rules.filter((r) => r.fired && r.action === "send") ?? [];
  return (
    <Layout title="Preview" here="preview">
      <h1>Preview a resource</h1>
      {props.problem !== undefined && <div class="notice bad">{props.problem}</div>}
      {props.result !== undefined && (
        <section class="card" data-preview-result>
          <h2>
            {props.result.resource}: {sent.length === 0 ? "no message" : `${sent.length} message(s)`}
          </h2>
          {props.result.rules.length === 0 ? <p>No rule is written for this resource type.</p> : <ul>{props.result.rules.map((r) => <RuleResult rule={r} />)}</ul>}
          <p class="muted">
            Evaluated {when(props.result.evaluatedAt)} against rules {props.result.rulesHash.slice(0, 12)}, as if the resource were new.
          </p>
        </section>
      )}
      <div class="grid2">
        <form class="card" method="post" action="/console/preview">
          <h2>Paste a resource (JSON)</h2>
          <textarea name="json" spellcheck={false} placeholder='{"resourceType": "Appointment", ...}'>
            {props.form.json ?? ""}
          </textarea>
          <p>
            <button type="submit">Preview</button>{" "}
            {props.hasExample && (
              <a class="button secondary" href="/console/preview?example=appointment">
                Load the sandbox example
              </a>
            )}
          </p>
        </form>
        <form class="card" method="post" action="/console/preview">
          <h2>Or read it from the FHIR server</h2>
          <p>
            <label>
              Type <input name="type" value={props.form.type ?? "Appointment"} pattern="[A-Z][A-Za-z]+" required />
            </label>{" "}
            <label>
              Id <input name="id" value={props.form.id ?? ""} pattern="[A-Za-z0-9\-.]{1,64}" required />
            </label>
          </p>
          <button type="submit">Preview</button>
        </form>
      </div>
    </Layout>
  );
}
