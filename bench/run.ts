/**
 * npm run bench — prints each figure next to a ceiling measured in the same run on the same
 * machine (machines here are shared and noisy, so absolute numbers alone mean little).
 * All traffic stays on loopback; every loop is bounded in count and time.
 */
import { benchIntake, benchIntakeWrk, type IntakeBenchResult } from "./intake.bench.js";
import { benchMapping } from "./mapping.bench.js";
import { benchSend } from "./whatsapp.bench.js";
import { benchAudit } from "./audit.bench.js";
import { benchScale } from "./scale.bench.js";
import { benchLimits, limitsBudget } from "./limits.bench.js";
import { benchConsole } from "./console.bench.js";
import { benchBudgetCost, benchDelivery, benchDeliveryCost, benchProcessedFootprint, benchStatuses } from "./delivery.bench.js";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined;
const want = (name: string) => only === undefined || only.split(",").includes(name);

const rows: string[][] = [];
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });
const row = (what: string, figure: string, ceiling: string, target: string) => {
  rows.push([what, figure, ceiling, target]);
  process.stdout.write(`${what}: ${figure} | ceiling ${ceiling} | target ${target}\n`);
};

const intakeRow = (load: string, r: IntakeBenchResult, target: string) =>
  row(
    `intake: notifications accepted and durably queued (64 clients, load from ${load}; median of ${r.ratios.length} rounds)`,
    `${fmt(r.intake.perSecond)}/s, p50 ${fmt(r.intake.p50Ms, 1)} ms, p99 ${fmt(r.intake.p99Ms, 1)} ms, ${fmt(r.intake.cpuUsPerRequest)} µs CPU/request (${fmt(r.intake.ok)} ok, ${fmt(r.intake.failed)} failed)`,
    `bare Hono + queue.add ${fmt(r.ceiling.perSecond)}/s, p99 ${fmt(r.ceiling.p99Ms, 1)} ms, ${fmt(r.ceiling.cpuUsPerRequest)} µs CPU/request → ${fmt(100 * r.ratio)}% of ceiling (median of the paired rounds: ${r.ratios.map((x) => `${fmt(100 * x)}%`).join(", ")})`,
    target,
  );
if (want("intake")) {
  intakeRow("a Node process sharing the cores", await benchIntake(arg("intake", 10_000)), "≥ 2,000/s, p99 ≤ 50 ms, ≥ 70% of ceiling");
  intakeRow("wrk", await benchIntakeWrk(arg("intake-seconds", 3)), "≥ 55% of ceiling");
}
if (want("mapping")) {
  const m = await benchMapping(arg("mapping", 50_000));
  row("mapping: decisions (resource in → rendered request out, references cached)", `${fmt(m.perSecond)}/s on one core`, "n/a (pure CPU, single thread)", "≥ 20,000/s");
}
if (want("send")) {
  const s = await benchSend(arg("send", 5_000));
  row("whatsapp client: sendTemplate → fake Graph API ack (64 in flight)", `${fmt(s.perSecond)}/s`, "(this is the ceiling for delivery below)", "—");
}

if (want("delivery")) {
  const d = await benchDelivery(arg("delivery", 3_000));
  const sendCeiling = (t: { perSecond: number }, c: { perSecond: number }) =>
    `bare BullMQ jobs doing the same send (Cloud API client → fake Graph API) and one ledger script ${fmt(c.perSecond)}/s → ${fmt((100 * t.perSecond) / c.perSecond)}% of ceiling`;
  row(
    "delivery: messages/s from queued decisions to fake Graph API ack and write-back drained (rate limit 1,000/s; one process, every queue)",
    `${fmt(d.delivery.perSecond)}/s (${d.delivery.items} messages; from notification, intake included: ${fmt(d.fromNotification?.perSecond ?? 0)}/s)`,
    sendCeiling(d.delivery, d.ceiling),
    "≥ 1,000/s",
  );
  const split = await benchDelivery(arg("delivery", 3_000), { auditProcess: true });
  row(
    "delivery: the same, Communication write-back in a second worker process (WORKER_QUEUES=audit)",
    `${fmt(split.delivery.perSecond)}/s (${split.delivery.items} messages)`,
    sendCeiling(split.delivery, split.ceiling),
    "≥ 1,000/s",
  );
  const cost = await benchDeliveryCost(arg("delivery-cost", 300));
  const top = cost.perSend.byName.slice(0, 8).map(([name, c]) => `${name} ${fmt(c, 1)}`).join(", ");
  row(
    `delivery: Redis commands and FHIR requests per appointment (MONITOR on ${cost.isolated ? "the bench's own redis-server" : "a shared Redis: counts include other clients"}; ${cost.appointments} appointments, untimed)`,
    `send phase ${fmt(cost.perSend.client, 1)} commands + ${fmt(cost.perSend.lua, 1)} inside Lua, ${fmt(cost.perSend.fhir, 1)} FHIR requests (${top}); whole path ${fmt(cost.perAppointment.client, 1)} + ${fmt(cost.perAppointment.lua, 1)} inside Lua, ${fmt(cost.perAppointment.fhir, 1)} FHIR requests`,
    "n/a (counts, not rates)",
    "~6 commands per send",
  );
  const st = await benchStatuses(arg("statuses", 3_000));
  row(
    "statuses: signed webhook POSTs (batches of 100) to ledger updated",
    `${fmt(st.delivery.perSecond)}/s (${st.delivery.items} events)`,
    `bare BullMQ add + no-op process ${fmt(st.ceiling.perSecond)}/s`,
    "≥ 3,000/s",
  );
}
if (want("budget")) {
  const budget = await benchBudgetCost(arg("delivery-budget", 2_000));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  row(
    `delivery: messages/s as above, with a daily unique-recipient budget in force (never deferring; median of ${budget.rounds.length} paired rounds)`,
    `${fmt(median(budget.rounds.map((r) => r.with.perSecond)))}/s with the budget check`,
    `without it ${fmt(median(budget.rounds.map((r) => r.without.perSecond)))}/s (same run) → overhead ${fmt(100 * budget.overhead, 1)}% (rounds: ${budget.rounds.map((r) => `${fmt(r.with.perSecond)} vs ${fmt(r.without.perSecond)}`).join(", ")})`,
    "≤ 10% overhead",
  );
}
if (want("audit")) {
  const a = await benchAudit(arg("audit", 1_000));
  row(
    "audit: Communication conditional creates against the sandbox FHIR server (real HTTP)",
    `${fmt(a.conditional.perSecond)}/s`,
    `plain creates ${fmt(a.ceiling.perSecond)}/s → ${fmt((100 * a.conditional.perSecond) / a.ceiling.perSecond)}% of ceiling`,
    "—",
  );
  row(
    "audit: writes per message for a full lifecycle burst",
    `${fmt(a.lifecycle.writesPerStep, 2)} writes/status step (${fmt(a.lifecycle.writesPerMessage, 2)} per message, ${a.lifecycle.unchanged} skipped as unchanged)`,
    "n/a",
    "≤ 1 write per status step",
  );
}
if (want("scale")) {
  const r = await benchScale(arg("scale", 2_000));
  row(
    "scale: messages/s with two worker processes vs one (one API process, one Redis)",
    `two workers ${fmt(r.two.perSecond)}/s (${fmt(r.speedup, 2)}x)`,
    `one worker ${fmt(r.one.perSecond)}/s (same run; ${r.cores} cores, load ${fmt(r.load, 1)})`,
    "two ≥ one; none sent twice",
  );
}
if (want("console")) {
  const c = await benchConsole(arg("console", 100_000));
  const lat = (l: { p50Ms: number; p95Ms: number }) => `p50 ${fmt(l.p50Ms, 1)} ms, p95 ${fmt(l.p95Ms, 1)} ms`;
  row(
    `console: timeline page (50 rows, counts per state) at ${fmt(c.notifications)} notifications, ${c.unfiltered.requests} sequential requests each (seeded through the ledger in ${fmt(c.seedSeconds, 1)} s)`,
    `unfiltered ${lat(c.unfiltered)}; state=not-done ${lat(c.byState)}; state=failed + rule ${lat(c.byStateAndRule)}; second page ${lat(c.older)}`,
    `bare Hono route doing the same Redis reads, no rendering: ${lat(c.ceiling)}`,
    "p95 < 500 ms",
  );
}
if (only?.split(",").includes("limits")) {
  // Not in the default run: 100,000 notifications take about a minute.
  const l = await benchLimits(arg("limits", 100_000));
  row("limits: burst of notifications into an API process", JSON.stringify(l), JSON.stringify(limitsBudget), "within the documented budget");
  const f = await benchProcessedFootprint(arg("footprint", 2_000));
  row(
    `limits: Redis bytes per fully processed appointment (${fmt(f.appointments)} appointments: confirmation sent and written back, reminder scheduled; finished send jobs, kept an hour for inspection, not counted; ${f.isolated ? "the bench's own redis-server" : "a shared Redis"})`,
    `${fmt(f.perAppointmentBytes.recommended)} bytes with hash-max-listpack-value 1024 (docs/operations.md); ${fmt(f.perAppointmentBytes.defaultConfig)} bytes on Redis defaults`,
    `beside ${fmt(l.redis.perEventBytes)} bytes per queued event (above)`,
    "≤ 6 KB per processed appointment",
  );
}

process.stdout.write(`\n${rows.map((r) => `| ${r.join(" | ")} |`).join("\n")}\n`);
