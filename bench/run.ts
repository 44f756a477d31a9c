/**
 * npm run bench — prints each figure next to a ceiling measured in the same run on the same
 * machine (machines here are shared and noisy, so absolute numbers alone mean little).
 * All traffic stays on loopback; every loop is bounded in count and time.
 */
import { benchIntake } from "./intake.bench.js";
import { benchMapping } from "./mapping.bench.js";
import { benchSend } from "./whatsapp.bench.js";
import { benchAudit } from "./audit.bench.js";
import { benchScale } from "./scale.bench.js";
import { benchLimits, limitsBudget } from "./limits.bench.js";
import { benchDelivery, benchStatuses } from "./delivery.bench.js";

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

if (want("intake")) {
  const { ceiling, intake, ratios, ratio } = await benchIntake(arg("intake", 10_000));
  row(
    `intake: notifications accepted and durably queued (64 clients; median of ${ratios.length} rounds)`,
    `${fmt(intake.perSecond)}/s, p50 ${fmt(intake.p50Ms, 1)} ms, p99 ${fmt(intake.p99Ms, 1)} ms, ${fmt(intake.cpuUsPerRequest)} µs CPU/request (${intake.ok} ok, ${intake.failed} failed)`,
    `bare Hono + queue.add ${fmt(ceiling.perSecond)}/s, p99 ${fmt(ceiling.p99Ms, 1)} ms, ${fmt(ceiling.cpuUsPerRequest)} µs CPU/request → ${fmt(100 * ratio)}% of ceiling (median of the paired rounds: ${ratios.map((r) => `${fmt(100 * r)}%`).join(", ")})`,
    "≥ 2,000/s, p99 ≤ 50 ms, ≥ 60% of ceiling",
  );
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
  row(
    "delivery: messages/s from queued decisions to fake Graph API ack (rate limit 1,000/s; one process, every queue)",
    `${fmt(d.delivery.perSecond)}/s (${d.delivery.items} messages; from notification, intake included: ${fmt(d.fromNotification?.perSecond ?? 0)}/s)`,
    `bare BullMQ add + no-op process ${fmt(d.ceiling.perSecond)}/s`,
    "≥ 1,000/s",
  );
  const split = await benchDelivery(arg("delivery", 3_000), { auditProcess: true });
  row(
    "delivery: the same, Communication write-back in a second worker process (WORKER_QUEUES=audit)",
    `${fmt(split.delivery.perSecond)}/s (${split.delivery.items} messages)`,
    `bare BullMQ add + no-op process ${fmt(split.ceiling.perSecond)}/s`,
    "≥ 1,000/s",
  );
  const st = await benchStatuses(arg("statuses", 3_000));
  row(
    "statuses: signed webhook POSTs (batches of 100) to ledger updated",
    `${fmt(st.delivery.perSecond)}/s (${st.delivery.items} events)`,
    `bare BullMQ add + no-op process ${fmt(st.ceiling.perSecond)}/s`,
    "≥ 3,000/s",
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
if (only?.split(",").includes("limits")) {
  // Not in the default run: 100,000 notifications take about a minute.
  const l = await benchLimits(arg("limits", 100_000));
  row("limits: burst of notifications into an API process", JSON.stringify(l), JSON.stringify(limitsBudget), "within the documented budget");
}

process.stdout.write(`\n${rows.map((r) => `| ${r.join(" | ")} |`).join("\n")}\n`);
