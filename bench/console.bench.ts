import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { Redis } from "ioredis";
import { consoleRoute, type ConsoleDeps } from "../src/console/console.route.js";
import type { DeliveryState } from "../src/delivery/delivery-record.js";
import type { NotDoneReason } from "../src/shared/not-done-reason.js";
import { createLedger } from "../src/delivery/ledger.js";
import { createTimelineIndex, withTimelineIndex } from "../src/delivery/timeline-index.js";
import type { AppEnv } from "../src/http/app-env.js";
import { freePort } from "../src/redis/embedded-redis.js";
import { benchRedis } from "./private-redis.js";

export interface Latency {
  requests: number;
  p50Ms: number;
  p95Ms: number;
}

export interface ConsoleBenchResult {
  notifications: number;
  seedSeconds: number;
  unfiltered: Latency;
  byState: Latency;
  /** A state plus a rule: the rule is filtered within the bounded scan. */
  byStateAndRule: Latency;
  /** The second page (the Older link), unfiltered. */
  older: Latency;
  /** A bare Hono route doing the page's Redis reads (range, 50 records, counts), no rendering. */
  ceiling: Latency;
}

const rules = ["appointment-booked", "appointment-reminder", "prescription-ready", "lab-report-available"] as const;
const templates: Record<(typeof rules)[number], string> = {
  "appointment-booked": "appointment_confirmation_v1",
  "appointment-reminder": "appointment_reminder_v1",
  "prescription-ready": "pharmacy_pickup_ready_v1",
  "lab-report-available": "portal_document_available_v1",
};

/** The life each seeded notification gets: mostly delivered or read, some not sent, failed or waiting. */
function outcome(i: number): { events: DeliveryState[]; reason?: NotDoneReason } {
  const k = i % 20;
  if (k < 7) return { events: ["accepted", "sent", "delivered"] };
  if (k < 12) return { events: ["accepted", "sent", "delivered", "read"] };
  if (k < 15) return { events: ["not-done"], reason: k === 14 ? "opted-out" : "no-consent" };
  if (k < 17) return { events: ["accepted", "failed"] };
  return { events: [] };
}

async function lanes(total: number, concurrency: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await one(next++);
    }),
  );
}

function summarise(ms: number[]): Latency {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0) * 10) / 10;
  return { requests: ms.length, p50Ms: at(0.5), p95Ms: at(0.95) };
}

async function timeRequests(url: string, n: number): Promise<Latency> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const res = await fetch(url);
    await res.text();
    if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
    ms.push(performance.now() - started);
  }
  return summarise(ms);
}

/**
 * The console timeline at `n` notifications (default 100,000): seeded through the real ledger and
 * its index wrapper (bounded concurrency, auto-pipelined), then timeline pages over real HTTP, one
 * at a time, next to a bare route doing the same Redis reads in the same process and run.
 */
export async function benchConsole(n: number, requests = 200): Promise<ConsoleBenchResult> {
  const target = await benchRedis();
  const redis = new Redis(target.url, { enableAutoPipelining: true });
  const prefix = "bench-console";
  try {
    const timeline = createTimelineIndex(redis, prefix);
    const ledger = withTimelineIndex(createLedger(redis, prefix), timeline);
    const start = Date.now() - 30 * 86_400_000;
    const seedStarted = performance.now();
    await lanes(n, 256, async (i) => {
      const rule = rules[i % rules.length]!;
      const createdAt = new Date(start + Math.floor((i * 30 * 86_400_000) / n)).toISOString();
      const deliveryId = `dlv_bench_${rule}_Appointment_b${i}`;
      await ledger.create({ deliveryId, source: "ehr", ruleId: rule, rulesHash: "bench", templateName: templates[rule], category: "notification", resourceRef: `Appointment/b${i}`, createdAt, updatedAt: createdAt });
      const life = outcome(i);
      if (life.reason !== undefined) await ledger.set(deliveryId, { reason: life.reason });
      for (const [k, state] of life.events.entries()) await ledger.append(deliveryId, { state, at: new Date(Date.parse(createdAt) + (k + 1) * 1000).toISOString() });
    });
    const seedSeconds = Math.round((performance.now() - seedStarted) / 100) / 10;

    const unused = () => Promise.reject(new Error("not part of the timeline bench"));
    const deps = {
      ledger,
      timeline,
      rules: rules.map((id) => ({ id, templateName: templates[id] })),
      sources: ["ehr"],
      adminToken: undefined,
      publicUrl: undefined,
      communicationUrl: (id: string) => `http://fhir.invalid/Communication/${id}`,
      bodyLimitBytes: 1_000_000,
      deadLetters: { list: unused, replay: unused },
      senderState: { status: unused, halt: unused, resume: unused },
      queues: unused,
      subscriptions: unused,
      templates: [],
      templateHolds: { heldFor: unused },
      preview: unused,
      readResource: unused,
    } satisfies ConsoleDeps;
    const app = new Hono<AppEnv>().route("/console", consoleRoute(deps));
    // The ceiling: the same Redis reads as one unfiltered page (range, records, counts), as JSON.
    app.get("/bare", async (c) => {
      const [counts, page] = await Promise.all([timeline.counts({}), redis.zrevrangebyscore(`${prefix}:tl:all`, "+inf", "-inf", "WITHSCORES", "LIMIT", 0, 50)]);
      const ids = page.filter((_, i) => i % 2 === 0);
      return c.json({ counts, records: await Promise.all(ids.map((id) => ledger.get(id))) });
    });
    const port = await freePort();
    const server = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" });
    try {
      const base = `http://127.0.0.1:${port}`;
      await timeRequests(`${base}/console`, 20); // warm-up: JIT, Lua script cache, connections
      const first = await (await fetch(`${base}/console`)).text();
      const older = /href="([^"]+)" rel="next"/.exec(first)?.[1]?.replaceAll("&amp;", "&");
      if (older === undefined) throw new Error("the first page has no Older link");
      return {
        notifications: (await timeline.counts({})).total,
        seedSeconds,
        unfiltered: await timeRequests(`${base}/console`, requests),
        byState: await timeRequests(`${base}/console?state=not-done`, requests),
        byStateAndRule: await timeRequests(`${base}/console?state=failed&rule=lab-report-available`, requests),
        older: await timeRequests(`${base}${older}`, requests),
        ceiling: await timeRequests(`${base}/bare`, requests),
      };
    } finally {
      await new Promise<void>((done) => server.close(() => done()));
    }
  } finally {
    await redis.quit();
    await target.stop();
  }
}
