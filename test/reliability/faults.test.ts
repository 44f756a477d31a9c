import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Appointment } from "fhir/r4";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { createLedger } from "../../src/delivery/ledger.js";
import { answersPing, freePort } from "../../src/redis/embedded-redis.js";
import { buildStatusWebhook, signWebhook, type FaultBehaviour } from "../fakes/graph-api.server.js";
import { waitFor } from "../support/wait-for.js";
import { appSecret, notify, notifyUntilAccepted, report, settleAndCount, startFaultWorld, type Figures, type SeededAppointment } from "./fault-harness.js";

/**
 * Fault scenarios with counts. Each one pushes N booked appointments (one patient and phone number
 * each, so one confirmation each) through a failure, then counts what the fake Graph API received:
 * doubled and lost must be 0; unknown-outcome (the service could not tell whether Meta sent it) is
 * reported. FN_RELIABILITY_FULL=1 runs 250 events per scenario (2,000 notifications in all: the
duplicate scenario sends four per appointment, the restart scenarios twice as many appointments)
instead of a handful; FN_RELIABILITY_EVENTS overrides the per-scenario count.
 * The Graph bodyless-5xx and hang scenarios send 60 each in the fast run (about 10-15 s each):
 * they must end with every message sent exactly once, none left unknown.
 */
const full = Boolean(process.env.FN_RELIABILITY_FULL);
const perScenario = Number(process.env.FN_RELIABILITY_EVENTS ?? (full ? 250 : 8));
const settleMs = full ? 240_000 : 60_000;
/** Graph-side scenarios send more (still well under 30 s): doubles and losses hide in small counts. */
const graphScenario = Number(process.env.FN_RELIABILITY_EVENTS ?? (full ? 250 : 60));
const rows: Figures[] = [];

afterAll(() => {
  if (rows.length > 0) report(rows);
});

function expectNoDoubleNoLoss(f: Figures): void {
  rows.push(f);
  expect(f.doubled, `${f.scenario}: doubled`).toBe(0);
  expect(f.lost, `${f.scenario}: lost`).toBe(0);
}

/** Faults that end in a sent message: every patient got exactly one, none ended unknown. */
function expectEverySentOnce(f: Figures, expected: number): void {
  expectNoDoubleNoLoss(f);
  expect(f.unknownOutcome, `${f.scenario}: unknown outcome`).toBe(0);
  expect(f.sent, `${f.scenario}: sent`).toBe(expected);
}

/** The number a send request is for, read from the body the proxy saw. */
function recipientOf(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { to?: string }).to;
  } catch {
    return undefined;
  }
}

/** Post with at most `concurrency` notifications in flight, like a FHIR server's delivery pool. */
async function inParallel<T>(items: T[], concurrency: number, work: (item: T, index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await work(items[i]!, i);
      }
    }),
  );
}

async function postAll(url: string, seeded: SeededAppointment[]): Promise<number> {
  let accepted = 0;
  await inParallel(seeded, 16, async ({ appointment }) => {
    const res = await notify(url, appointment);
    expect(res.status).toBe(202);
    accepted += 1;
  });
  return accepted;
}

describe("faults lose no message and send none twice", { timeout: full ? 600_000 : 90_000 }, () => {
  it("FHIR server answering 503 for a while, then recovering", async () => {
    const world = await startFaultWorld();
    const service = await world.start("all");
    const seeded = await world.seedAppointments(perScenario);
    world.fhirProxy.fail({ kind: "status", status: 503 });
    const accepted = await postAll(service.url, seeded);
    // Every event's first reads fail (with the client's own retries) before the server comes back.
    await waitFor("the outage to be felt", () => world.fhirProxy.faulted() >= perScenario * 3, 30_000);
    world.fhirProxy.heal();
    expectNoDoubleNoLoss(await settleAndCount(world, "FHIR 503 then recovery", seeded, accepted, settleMs));
  });

  it("FHIR server timing out for a while, then recovering", async () => {
    const world = await startFaultWorld();
    const service = await world.start("all");
    const seeded = await world.seedAppointments(perScenario);
    world.fhirProxy.fail({ kind: "hang" });
    const accepted = await postAll(service.url, seeded);
    // Each timed-out read holds a worker for the client timeout, so count a bounded number of them.
    await waitFor("reads to time out", () => world.fhirProxy.faulted() >= Math.min(perScenario * 2, 48), 60_000);
    world.fhirProxy.heal();
    expectNoDoubleNoLoss(await settleAndCount(world, "FHIR timeouts then recovery", seeded, accepted, settleMs));
  });

  it("Graph API 429s and 5xx storms", async () => {
    const world = await startFaultWorld();
    const service = await world.start("all", { unknownOutcomeWindowMs: 5_000 });
    // Meta reports every message it accepted, the reset ones too: that is what keeps them single.
    world.emitSentStatuses(() => service.url);
    const seeded = await world.seedAppointments(perScenario);
    // A mix per recipient: throttling (bare and Meta-coded), Meta's own 500, a bare 503 from a
    // proxy (not processed: retried), and a reset after Meta accepted (sent, outcome unknown to us).
    const storms: [FaultBehaviour, number][] = [
      [{ kind: "bare-status", httpStatus: 429, retryAfter: "0" }, 3],
      [{ kind: "error", code: 130429 }, 2],
      [{ kind: "error", code: 131056 }, 1],
      [{ kind: "error", code: 131000, httpStatus: 500 }, 3],
      [{ kind: "bare-status", httpStatus: 503 }, 1],
      [{ kind: "reset" }, 1],
    ];
    seeded.forEach(({ phone }, i) => {
      const [behaviour, times] = storms[i % storms.length]!;
      world.graph.inject(phone, behaviour, times);
    });
    const accepted = await postAll(service.url, seeded);
    const figures = await settleAndCount(world, "Graph 429 + 5xx storm", seeded, accepted, settleMs);
    expectNoDoubleNoLoss(figures);
    expect(world.graph.requests.some((r) => r.status === 429)).toBe(true);
  });

  it("Graph 5xx answers from a proxy without Meta's body (502/503/504, empty body)", async () => {
    const world = await startFaultWorld();
    const service = await world.start("all");
    world.emitSentStatuses(() => service.url);
    const seeded = await world.seedAppointments(graphScenario);
    // Up to three bodyless answers per recipient before the proxy lets the request through.
    const answers = [502, 503, 504];
    seeded.forEach(({ phone }, i) => world.graph.inject(phone, { kind: "bare-status", httpStatus: answers[i % 3]! }, 1 + (i % 3)));
    const accepted = await postAll(service.url, seeded);
    const figures = await settleAndCount(world, "Graph bodyless 5xx", seeded, accepted, settleMs);
    expectEverySentOnce(figures, seeded.length);
    expect(world.graph.requests.filter((r) => r.status >= 502).length).toBe(seeded.reduce((n, _, i) => n + 1 + (i % 3), 0));
  });

  it("Graph hanging until the client timeout, with and without Meta having the message", async () => {
    const world = await startFaultWorld();
    // Long enough for Meta's sent status (emitted at once here) to arrive on a loaded machine.
    const service = await world.start("all", { unknownOutcomeWindowMs: 5_000 });
    world.emitSentStatuses(() => service.url);
    const seeded = await world.seedAppointments(graphScenario);
    // A third: the request hangs in front of Meta (never reached it): no status comes, so the
    // window ends and the message is sent again. A third: Meta accepted it but the answer never
    // comes: Meta's sent status decides, no resend. The rest: no fault.
    const hangBeforeMeta = new Set(seeded.filter((_, i) => i % 3 === 0).map((s) => s.phone));
    seeded.forEach(({ phone }, i) => {
      if (i % 3 === 1) world.graph.inject(phone, { kind: "slow" }, 1);
    });
    world.graphProxy.fail({ kind: "hang" }, (method, path, body) => {
      const to = method === "POST" && path.endsWith("/messages") ? recipientOf(body) : undefined;
      return to !== undefined && hangBeforeMeta.delete(to);
    });
    const accepted = await postAll(service.url, seeded);
    const figures = await settleAndCount(world, "Graph hangs until timeout", seeded, accepted, settleMs);
    expectEverySentOnce(figures, seeded.length);
    expect(world.graphProxy.faulted()).toBe(Math.ceil(seeded.length / 3));
  });

  it("FHIR notifications delivered twice and out of order, and status webhooks likewise", async () => {
    const world = await startFaultWorld();
    const service = await world.start("all");
    const seeded = await world.seedAppointments(perScenario);
    // A second version that changes nothing the rule looks at.
    const second = new Map<string, Appointment>();
    for (const { appointment } of seeded) {
      const res = await world.fhir.request(`/fhir/Appointment/${appointment.id}`, { method: "PUT", headers: { "content-type": "application/fhir+json" }, body: JSON.stringify({ ...appointment, comment: "parking at the back" }) });
      second.set(appointment.id, (await res.json()) as Appointment);
    }
    // v2, v1, v2, v1 for every appointment, interleaved across appointments.
    const deliveries = seeded.flatMap(({ appointment }) => [second.get(appointment.id)!, appointment, second.get(appointment.id)!, appointment]);
    let accepted = 0;
    await inParallel(deliveries, 16, async (resource) => {
      const res = await notify(service.url, resource);
      expect([200, 202]).toContain(res.status);
      accepted += 1;
    });
    expectNoDoubleNoLoss(await settleAndCount(world, "FHIR duplicates + out of order", seeded, accepted, settleMs));

    // Meta's statuses arrive out of order and twice: read, delivered, sent, then all again.
    const at = Math.floor(Date.now() / 1000);
    for (const order of [["read", "delivered", "sent"], ["sent", "read", "delivered"]] as const) {
      for (const status of order) {
        const body = buildStatusWebhook({
          phoneNumberId: world.graph.phoneNumberId,
          statuses: world.graph.records.map((r) => ({ wamid: r.wamid, status, timestamp: at + (status === "sent" ? 0 : status === "delivered" ? 1 : 2), recipientId: r.to, ...(r.callbackData !== undefined ? { callbackData: r.callbackData } : {}) })),
        });
        const res = await fetch(`${service.url}/hooks/whatsapp`, { method: "POST", headers: { "content-type": "application/json", "x-hub-signature-256": signWebhook(body, appSecret) }, body });
        expect(res.status).toBe(200);
      }
    }
    const redis = new Redis(world.redisUrl);
    onTestFinished(async () => {
      await redis.quit();
    });
    const ledger = createLedger(redis, world.prefix);
    await waitFor("every delivery to reach read", async () => {
      for (const r of world.graph.records) {
        const id = await ledger.byWamid(r.wamid);
        const record = id === undefined ? undefined : await ledger.get(id);
        if (record?.state !== "read") return false;
      }
      return true;
    });
    expect(world.graph.records.length).toBe(perScenario);
  });

  // Stalled jobs are only re-queued once their lock lapses (~30 s), so this one is long.
  it.skipIf(!full)("Redis restarted in the middle of a burst", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fn-rel-redis-"));
    const port = await freePort();
    let redis = await startRedis(port, dir);
    onTestFinished(async () => {
      await stopRedis(redis);
      rmSync(dir, { recursive: true, force: true });
    });
    const world = await startFaultWorld({ redisUrl: `redis://127.0.0.1:${port}` });
    const service = await world.start("all", { unknownOutcomeWindowMs: 5_000 });
    // A send Meta accepted while Redis was down is in doubt; Meta's status decides it.
    world.emitSentStatuses(() => service.url);
    const seeded = await world.seedAppointments(perScenario * 2);
    let accepted = 0;
    let retried = 0;
    const posting = inParallel(seeded, 4, async ({ appointment }) => {
      const tries = await notifyUntilAccepted(() => service.url, appointment);
      retried += tries - 1;
      accepted += 1;
    });
    // Restart while intake is still taking notifications and workers are sending.
    await waitFor("the first messages to go out", () => world.graph.records.length >= seeded.length / 8 || undefined, 60_000);
    await stopRedis(redis);
    redis = await startRedis(port, dir);
    await posting;
    const figures = await settleAndCount(world, "Redis restart mid-burst", seeded, accepted, settleMs);
    expectNoDoubleNoLoss(figures);
    console.info(`Redis restart: ${retried} notification attempt(s) were refused (503) and retried by the sender`);
  });

  it("the API stopped while answering notifications, and the FHIR server retrying them all", async () => {
    const world = await startFaultWorld();
    const first = await world.start("api");
    const seeded = await world.seedAppointments(perScenario * 2);
    let url = first.url;
    let accepted = 0;
    let stopping: Promise<void> | undefined;
    await inParallel(seeded, 8, async ({ appointment }, i) => {
      if (i === seeded.length / 2) {
        // Stop the API with requests in flight; the sender's retries land on the new process.
        stopping = (async () => {
          await first.stop();
          url = (await world.start("api")).url;
        })();
      }
      await notifyUntilAccepted(() => url, appointment);
      accepted += 1;
    });
    await stopping;
    // The FHIR server never saw some answers, so it delivers everything again.
    for (const { appointment } of seeded) expect((await notify(url, appointment)).status).toBe(202);
    await world.start("worker");
    expectNoDoubleNoLoss(await settleAndCount(world, "API restart + redelivery", seeded, accepted, settleMs));
  });
});

function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--maxmemory-policy", "noeviction"],
    { stdio: "ignore" },
  );
  return waitFor(`redis-server on ${port}`, async () => ((await answersPing("127.0.0.1", port, 200)) ? child : undefined), 10_000);
}

function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    child.once("exit", () => done());
    child.kill("SIGTERM");
  });
}
