/**
 * npm run bench — prints each figure next to a ceiling measured in the same run on the same
 * machine (machines here are shared and noisy, so absolute numbers alone mean little).
 * All traffic stays on loopback; every loop is bounded in count and time.
 */
import { benchIntake } from "./intake.bench.js";
import { benchMapping } from "./mapping.bench.js";
import { benchSend } from "./whatsapp.bench.js";

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
  const { ceiling, intake } = await benchIntake(arg("intake", 10_000));
  row(
    "intake: notifications accepted and durably queued (64 clients)",
    `${fmt(intake.perSecond)}/s, p50 ${fmt(intake.p50Ms, 1)} ms, p99 ${fmt(intake.p99Ms, 1)} ms (${intake.ok} ok, ${intake.failed} failed)`,
    `bare Hono + queue.add ${fmt(ceiling.perSecond)}/s, p99 ${fmt(ceiling.p99Ms, 1)} ms → ${fmt((100 * intake.perSecond) / ceiling.perSecond)}% of ceiling`,
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

process.stdout.write(`\n${rows.map((r) => `| ${r.join(" | ")} |`).join("\n")}\n`);
