import { z } from "zod";
import type { LedgerRecord } from "../delivery/ledger.js";
import { groupOf, timelineGroups, type TimelineCursor, type TimelineFilter, type TimelineGroup, type TimelinePage } from "../delivery/timeline-index.js";
import type { NotDoneReason } from "../shared/not-done-reason.js";
import { Layout } from "./layout.js";
import { groupTone, groupWords, reasonWords, stateWords, when } from "./words.js";

export const pageSize = 50;

const reasons = Object.keys(reasonWords) as [NotDoneReason, ...NotDoneReason[]];
const code = z.string().max(128).regex(/^[A-Za-z0-9._:-]+$/);
/** "2026-12-04T20:30" from <input type="datetime-local">, read as UTC; seconds allowed. */
const minute = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/);
const emptyAsUndefined = (v: unknown) => (v === "" ? undefined : v);

export const timelineQuery = z.object({
  state: z.preprocess(emptyAsUndefined, z.enum(timelineGroups).optional()),
  reason: z.preprocess(emptyAsUndefined, z.enum(reasons).optional()),
  rule: z.preprocess(emptyAsUndefined, code.optional()),
  template: z.preprocess(emptyAsUndefined, code.optional()),
  source: z.preprocess(emptyAsUndefined, code.optional()),
  from: z.preprocess(emptyAsUndefined, minute.optional()),
  to: z.preprocess(emptyAsUndefined, minute.optional()),
  after: z.preprocess(emptyAsUndefined, z.string().max(400).optional()),
});
export type TimelineQuery = z.output<typeof timelineQuery>;

const cursorShape = z.object({ id: z.string().min(1).max(256), score: z.number().finite() }).strict();

export function encodeCursor(cursor: TimelineCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString("base64url");
}

export function decodeCursor(raw: string | undefined): TimelineCursor | undefined | "invalid" {
  if (raw === undefined) return undefined;
  try {
    const parsed = cursorShape.safeParse(JSON.parse(Buffer.from(raw, "base64url").toString("utf8")));
    return parsed.success ? parsed.data : "invalid";
  } catch {
    return "invalid";
  }
}

const utcMs = (v: string | undefined) => (v === undefined ? undefined : Date.parse(`${v.length === 16 ? `${v}:00` : v}Z`));

export function filterOf(q: TimelineQuery): TimelineFilter {
  const fromMs = utcMs(q.from);
  // "to" names a minute: everything created within it counts.
  const toMinute = utcMs(q.to);
  const toMs = toMinute === undefined ? undefined : q.to!.length === 16 ? toMinute + 59_999 : toMinute + 999;
  return {
    ...(q.state !== undefined ? { group: q.state } : {}),
    ...(q.reason !== undefined ? { reason: q.reason } : {}),
    ...(q.rule !== undefined ? { ruleId: q.rule } : {}),
    ...(q.template !== undefined ? { templateName: q.template } : {}),
    ...(q.source !== undefined ? { source: q.source } : {}),
    ...(fromMs !== undefined ? { fromMs } : {}),
    ...(toMs !== undefined ? { toMs } : {}),
  };
}

/** The query string of the current filters, with some replaced (`undefined` drops one). */
function link(q: TimelineQuery, change: Partial<Record<keyof TimelineQuery, string | undefined>>): string {
  const params = new URLSearchParams();
  const merged = { ...q, after: undefined, ...change };
  for (const [k, v] of Object.entries(merged)) if (v !== undefined && v !== "") params.set(k, v);
  const s = params.toString();
  return s === "" ? "/console" : `/console?${s}`;
}

export interface TimelineView {
  query: TimelineQuery;
  counts: { total: number; byGroup: Record<TimelineGroup, number> };
  page: TimelinePage;
  records: LedgerRecord[];
  rules: ReadonlyArray<{ id: string; templateName?: string }>;
  sources: readonly string[];
}

export function TimelinePageView({ view }: { view: TimelineView }) {
  const q = view.query;
  const templates = [...new Set(view.rules.flatMap((r) => (r.templateName !== undefined ? [r.templateName] : [])))];
  return (
    <Layout title="Timeline" here="timeline">
      <h1>Notifications</h1>
      <ul class="counts" aria-label="Notifications per state">
        <li>
          <a href={link(q, { state: undefined })} class={q.state === undefined ? "here" : ""}>
            All<b>{view.counts.total}</b>
          </a>
        </li>
        {timelineGroups.map((g) => (
          <li>
            <a href={link(q, { state: g })} class={q.state === g ? "here" : ""} data-state={g}>
              {groupWords[g]}
              <b>{view.counts.byGroup[g]}</b>
            </a>
          </li>
        ))}
      </ul>
      <form class="filters card" method="get" action="/console">
        <FilterSelect label="State" name="state" chosen={q.state} options={timelineGroups.map((g) => [g, groupWords[g]])} />
        <FilterSelect label="Reason" name="reason" chosen={q.reason} options={reasons.map((r) => [r, r])} />
        <FilterSelect label="Rule" name="rule" chosen={q.rule} options={view.rules.map((r) => [r.id, r.id])} />
        <FilterSelect label="Template" name="template" chosen={q.template} options={templates.map((t) => [t, t])} />
        <FilterSelect label="Source" name="source" chosen={q.source} options={view.sources.map((s) => [s, s])} />
        <label>
          Created from (UTC)
          <input type="datetime-local" name="from" value={q.from ?? ""} />
        </label>
        <label>
          to (UTC)
          <input type="datetime-local" name="to" value={q.to ?? ""} />
        </label>
        <button type="submit">Filter</button>
        <a class="button secondary" href="/console">
          Clear
        </a>
      </form>
      <p class="muted">Counts are per state within the time range, for every rule, template and source.</p>
      {view.records.length === 0 ? (
        <div class="card">{view.page.partial ? "None in this stretch of the timeline; Older searches further back." : "No notifications match these filters."}</div>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Created</th>
              <th>State</th>
              <th>Rule</th>
              <th>Template</th>
              <th>Resource</th>
              <th>Reason</th>
              <th>Source</th>
            </tr>
          </thead>
          <tbody>
            {view.records.map((r) => {
              const g = groupOf(r.state);
              return (
                <tr data-delivery={r.deliveryId}>
                  <td>
                    <a href={`/console/notifications/${encodeURIComponent(r.deliveryId)}`}>{when(r.createdAt)}</a>
                  </td>
                  <td>
                    <span class={`state ${groupTone[g]}`} title={stateWords[r.state]}>
                      {r.state}
                    </span>
                  </td>
                  <td class="mono">{r.ruleId}</td>
                  <td class="mono">{r.templateName}</td>
                  <td class="mono">{r.resourceRef}</td>
                  <td>{r.reason !== undefined ? <span title={reasonWords[r.reason]}>{r.reason}</span> : ""}</td>
                  <td class="mono">{r.source}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <div class="pager">
        {q.after !== undefined && <a href={link(q, {})}>Newest</a>}
        {view.page.next !== undefined && (
          <a class="button secondary" href={link(q, { after: encodeCursor(view.page.next) })} rel="next">
            Older
          </a>
        )}
        <span class="muted">
          {view.page.partial ? `Looked at ${view.page.scanned} notifications without filling the page; Older looks further.` : ""}
        </span>
      </div>
    </Layout>
  );
}

/** One filter of the form: "any" first, then each value with its words, the chosen one selected. */
function FilterSelect(props: { label: string; name: string; chosen: string | undefined; options: ReadonlyArray<readonly [value: string, words: string]> }) {
  return (
    <label>
      {props.label}
      <select name={props.name}>
        <option value="">any</option>
        {props.options.map(([value, words]) => (
          <option value={value} selected={props.chosen === value}>
            {words}
          </option>
        ))}
      </select>
    </label>
  );
}
