import type { DeadLetterEntry } from "../delivery/dead-letter.js";
import { queueNames } from "../delivery/jobs.js";
import type { SenderState } from "../delivery/sender-state.js";
import type { TemplateHold } from "../delivery/template-holds.js";
import type { QueueSnapshot } from "../http/routes/queue-health.js";
import type { ListedSubscription, SubscriptionProblem } from "../intake/subscriptions.js";
import { Layout } from "./layout.js";
import { when } from "./words.js";

export interface TemplateHealth {
  templateName: string;
  languageCode: string;
  hold: TemplateHold | undefined;
}

export interface OperationsView {
  sender: Awaited<ReturnType<SenderState["status"]>>;
  deadLetters: DeadLetterEntry[];
  queues: QueueSnapshot;
  templates: TemplateHealth[];
  /** Undefined when the FHIR server could not be asked. */
  subscriptions: ListedSubscription[] | undefined;
  /** What the last action did, for the notice at the top. */
  done?: string;
}

const problemWords: Record<SubscriptionProblem, string> = {
  "not-activated": "still requested: the FHIR server has not activated it and delivers nothing",
  error: "in error on the FHIR server: it stopped delivering",
  off: "off on the FHIR server",
};

const holdWords: Record<TemplateHold["code"], string> = {
  paused: "paused by WhatsApp (usually lifts in 3 or 6 hours); its messages wait",
  disabled: "disabled by WhatsApp; its messages end as not sent",
  rejected: "rejected by WhatsApp",
  "pending-deletion": "being deleted at WhatsApp",
  deleted: "deleted at WhatsApp",
  archived: "archived at WhatsApp",
  "not-utility": "no longer in the utility category; patient logistics must not go out as marketing",
};

const depthStates = ["waiting", "active", "delayed", "prioritized", "failed"] as const;

/** Dead letters, the sender, queue depths, template and subscription health: one page for whoever is on call. */
export function OperationsPage({ view }: { view: OperationsView }) {
  return (
    <Layout title="Operations" here="operations">
      <h1>Operations</h1>
      {view.done !== undefined && <div class="notice good">{view.done}</div>}

      <h2>Sender</h2>
      <div class={`card ${view.sender.halted ? "notice bad" : ""}`} data-sender={view.sender.halted ? "paused" : "running"}>
        {view.sender.halted ? (
          <>
            <p>
              <b>Paused</b> since {when(view.sender.since)}: {view.sender.reason}
              {view.sender.code !== undefined ? ` (WhatsApp code ${view.sender.code})` : ""}. The delivery queue waits; nothing is lost.
            </p>
            <form method="post" action="/console/operations/sender/resume">
              <button type="submit">Resume sending</button>
            </form>
          </>
        ) : (
          <>
            <p>
              <b>Running.</b> Pausing stops every send process before its next message; waiting messages stay queued.
            </p>
            <form method="post" action="/console/operations/sender/pause">
              <button type="submit" class="danger">
                Pause sending
              </button>
            </form>
          </>
        )}
      </div>

      <h2>Dead-letter queue ({view.deadLetters.length})</h2>
      {view.deadLetters.length === 0 ? (
        <div class="card">Empty: every job either finished or is still being retried.</div>
      ) : (
        <>
          <table>
            <thead>
              <tr>
                <th>Dead since</th>
                <th>Queue</th>
                <th>Job</th>
                <th>Notification</th>
                <th>Last error</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {view.deadLetters.map((e) => (
                <tr data-dead-letter={e.id}>
                  <td>{when(e.at)}</td>
                  <td class="mono">{e.queue}</td>
                  <td class="mono">{e.name}</td>
                  <td class="mono">{e.deliveryId !== undefined ? <a href={`/console/notifications/${encodeURIComponent(e.deliveryId)}`}>{e.deliveryId}</a> : ""}</td>
                  <td>{e.reason}</td>
                  <td>
                    <a class="button secondary" href={`/console/operations/dlq/${encodeURIComponent(e.id)}/replay`}>
                      Replay…
                    </a>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <p>
            <a class="button secondary" href="/console/operations/dlq/all/replay">
              Replay all…
            </a>
          </p>
        </>
      )}

      <h2>Queues</h2>
      <table>
        <thead>
          <tr>
            <th>Queue</th>
            {depthStates.map((s) => (
              <th>{s}</th>
            ))}
            <th>Oldest waiting</th>
          </tr>
        </thead>
        <tbody>
          {queueNames.map((q) => (
            <tr data-queue={q}>
              <td class="mono">{q}</td>
              {depthStates.map((s) => (
                <td>{view.queues.depth[q][s]}</td>
              ))}
              <td>{q === "dead-letter" ? "" : `${Math.round(view.queues.oldestWaitingSeconds[q])} s`}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p>
        Jobs one by one: <a href="/admin/queues">Bull Board</a> (read-only).
      </p>

      <h2>Templates</h2>
      <table>
        <thead>
          <tr>
            <th>Template</th>
            <th>Language</th>
            <th>Health</th>
          </tr>
        </thead>
        <tbody>
          {view.templates.map((t) => (
            <tr data-template={`${t.templateName}|${t.languageCode}`}>
              <td class="mono">{t.templateName}</td>
              <td class="mono">{t.languageCode}</td>
              <td>{t.hold === undefined ? <span class="state good">in use</span> : <span class="state bad" title={`since ${when(t.hold.since)}`}>{holdWords[t.hold.code]}</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>

      <h2>FHIR subscriptions</h2>
      {view.subscriptions === undefined ? (
        <div class="notice bad">The FHIR server could not be asked for our Subscriptions just now.</div>
      ) : view.subscriptions.length === 0 ? (
        <div class="card">None of ours on the FHIR server (sources that poll or receive events another way have none).</div>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Source</th>
              <th>Criteria</th>
              <th>Status</th>
              <th>Last updated</th>
            </tr>
          </thead>
          <tbody>
            {view.subscriptions.map((s) => (
              <tr data-subscription={s.id}>
                <td class="mono">{s.source ?? "(untagged)"}</td>
                <td class="mono">{s.criteria}</td>
                <td>{s.problem === undefined ? <span class="state good">{s.status}</span> : <span class="state bad">{problemWords[s.problem]}</span>}</td>
                <td>{when(s.lastUpdated)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Layout>
  );
}

/** The confirm step before a replay: what will be retried, and one button. */
export function ReplayConfirmPage({ entries, all }: { entries: DeadLetterEntry[]; all: boolean }) {
  return (
    <Layout title="Replay dead letters" here="operations">
      <h1>Replay {all ? `all ${entries.length} dead letters` : "this dead letter"}?</h1>
      <div class="notice">
        Replaying retries the original job from its first attempt and resumes a halted sender. Fix the cause first (see the last error), or it comes back
        here.
      </div>
      <ul>
        {entries.map((e) => (
          <li>
            <span class="mono">{e.name}</span> on <span class="mono">{e.queue}</span>
            {e.deliveryId !== undefined ? (
              <>
                {" "}
                for <span class="mono">{e.deliveryId}</span>
              </>
            ) : (
              ""
            )}
            : {e.reason}
          </li>
        ))}
      </ul>
      <form method="post" action="/console/operations/dlq/replay">
        {!all && entries.map((e) => <input type="hidden" name="id" value={e.id} />)}
        {all && <input type="hidden" name="all" value="1" />}
        <button type="submit">Yes, replay</button> <a href="/console/operations">Cancel</a>
      </form>
    </Layout>
  );
}
