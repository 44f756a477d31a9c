import { describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { waitFor } from "../../support/wait-for.js";
import { startDeliveryService, requestsTo, startIn, type DeliveryKit } from "./delivery-kit.js";

const run = promisify(execFile);

/** Books one appointment for a fresh patient and returns the confirmation's delivery id. */
async function bookConfirmation(kit: DeliveryKit, phone: string): Promise<string> {
  const patientId = await kit.addPatient(phone);
  const appt = await kit.book(patientId, startIn(30));
  const record = await kit.delivery("appointment-booked", appt.id);
  return record.deliveryId;
}

describe("how each WhatsApp error class is handled, through the live client and a fake Graph API", () => {
  it("delays a message Meta throttles (130429), sends it later, and uses none of its retry attempts", async () => {
    const kit = await startDeliveryService();
    const phone = "+12025550141";
    // More throttling answers than the job has attempts: it must still go out.
    kit.graph.inject(phone, { kind: "error", code: 130429 }, 4);
    const id = await bookConfirmation(kit, phone);

    for (let n = 1; n <= 4; n++) {
      const job = await kit.delayed(id, (r) => r.throttled === n, 500);
      // Per-number throughput: about a second, with up to 500 ms of jitter.
      expect(job.delay).toBeGreaterThanOrEqual(900);
      expect(job.delay).toBeLessThanOrEqual(1_500);
      await job.promote();
    }
    const sent = await kit.until(id, "the message accepted", (r) => r.state === "accepted");
    expect(sent.wamid).toBe((await kit.sentFor(id))?.wamid);
    expect(kit.graph.sentTo(phone)).toBe(1);
    expect(requestsTo(kit.graph, phone)).toEqual([400, 400, 400, 400, 200]);
    // BullMQ counts the finished run itself: one run, so four throttles used no attempt.
    await waitForState(kit, id, "completed");
    const job = await kit.deliveryJob(id);
    expect(job.attemptsMade).toBe(1);
  });

  it("backs off 4^X seconds on Meta's pair rate limit (131056), counting throttles per delivery", async () => {
    const kit = await startDeliveryService();
    const phone = "+12025550142";
    kit.graph.inject(phone, { kind: "error", code: 131056 }, 3);
    const id = await bookConfirmation(kit, phone);

    const delays: number[] = [];
    for (let n = 1; n <= 3; n++) {
      const job = await kit.delayed(id, (r) => r.throttled === n, 500);
      delays.push(job.delay);
      await job.promote();
    }
    // moveToDelayed measures from its own Date.now(), a few ms after the worker's.
    expect(delays.map((d) => Math.round(d / 1000))).toEqual([1, 4, 16]);
    await kit.until(id, "the message accepted", (r) => r.state === "accepted");
    expect(kit.graph.sentTo(phone)).toBe(1);
    await waitForState(kit, id, "completed");
    expect((await kit.deliveryJob(id)).attemptsMade).toBe(1);
  });

  it("retries a transient failure (131000, then 131016 answered with 503) with backoff, then sends once", async () => {
    const kit = await startDeliveryService();
    const phone = "+12025550143";
    kit.graph.inject(phone, { kind: "error", code: 131000 }, 1);
    const id = await bookConfirmation(kit, phone);
    await kit.until(id, "the first failure", () => requestsTo(kit.graph, phone).length >= 1);
    kit.graph.inject(phone, { kind: "error", code: 131016, httpStatus: 503 }, 1);

    await kit.until(id, "the message accepted", (r) => r.state === "accepted");
    expect(requestsTo(kit.graph, phone)).toEqual([500, 503, 200]);
    expect(kit.graph.sentTo(phone)).toBe(1);
    const job = await kit.deliveryJob(id);
    // Two failed attempts and the successful one.
    expect(job.attemptsMade).toBe(3);
    await kit.communication(id, (c) => c.status === "in-progress" || c.status === "completed");
  });

  it.each([
    { code: 131026, label: "recipient (131026)", reason: "recipient-unavailable" },
    { code: 132001, label: "template (132001)", reason: "system-error" },
    { code: 131064, label: "unknown (131064)", reason: "system-error" },
  ])("records a permanent $label failure as not-done with the vendor code, without a retry", async ({ code, reason }) => {
    const kit = await startDeliveryService();
    const phone = "+12025550144";
    kit.graph.inject(phone, { kind: "error", code });
    const id = await bookConfirmation(kit, phone);

    const record = await kit.until(id, "not-done", (r) => r.state === "not-done");
    expect(record.reason).toBe("whatsapp-permanent");
    expect(record.vendorCode).toBe(code);
    expect(requestsTo(kit.graph, phone)).toHaveLength(1);
    expect(kit.graph.sentTo(phone)).toBe(0);
    await waitForState(kit, id, "completed");
    expect((await kit.deliveryJob(id)).attemptsMade).toBe(1);

    const communication = await kit.communication(id, (c) => c.status === "not-done");
    expect(JSON.stringify(communication.statusReason)).toContain(reason === "recipient-unavailable" ? "recipient-unavailable" : "system-error");
  });

  it("halts the sender on 190: queue paused, readiness degraded, nothing sent until an operator resumes", async () => {
    const kit = await startDeliveryService();
    const first = "+12025550145";
    const second = "+12025550146";
    kit.graph.inject(first, { kind: "error", code: 190 }, 1);
    const firstId = await bookConfirmation(kit, first);

    await waitForHalt(kit);
    expect(await kit.service.queues.byName.delivery.isPaused()).toBe(true);
    const sender = (await (await kit.admin("/admin/sender")).json()) as { halted: boolean; code?: number };
    expect(sender).toMatchObject({ halted: true, code: 190 });
    const ready = (await (await kit.admin("/readyz")).json()) as { status: string; reasons: string[] };
    expect(ready.status).toBe("degraded");
    expect(ready.reasons).toContain("whatsapp sender halted (code 190)");

    // A second message decided while halted waits in the paused queue.
    const secondId = await bookConfirmation(kit, second);
    await waitForState(kit, secondId, "waiting");
    await waitForState(kit, firstId, "waiting");
    expect(kit.graph.records).toHaveLength(0);

    const resumed = await kit.admin("/admin/sender/resume", { method: "POST" });
    expect(await resumed.json()).toEqual({ halted: false });
    await kit.until(firstId, "the first message accepted", (r) => r.state === "accepted");
    await kit.until(secondId, "the second message accepted", (r) => r.state === "accepted");
    expect(kit.graph.sentTo(first)).toBe(1);
    expect(kit.graph.sentTo(second)).toBe(1);
    await waitForState(kit, firstId, "completed");
    // The halted run went back to the queue without failing: one finished run in all.
    expect((await kit.deliveryJob(firstId)).attemptsMade).toBe(1);
    const after = (await (await kit.admin("/readyz")).json()) as { status: string };
    expect(after.status).toBe("ready");
  });

  it("halts on a locked account (131031) and a DLQ replay resumes the sender and sends what waited", async () => {
    const kit = await startDeliveryService();
    const phone = "+12025550147";
    kit.graph.inject(phone, { kind: "error", code: 131031 }, 1);
    const id = await bookConfirmation(kit, phone);
    await waitForHalt(kit);
    await waitForState(kit, id, "waiting");
    expect(kit.graph.sentTo(phone)).toBe(0);

    const replay = await kit.admin("/admin/dlq/replay", { method: "POST" });
    expect(replay.status).toBe(200);
    await kit.until(id, "the message accepted", (r) => r.state === "accepted");
    expect(kit.graph.sentTo(phone)).toBe(1);
    expect(await kit.service.queues.byName.delivery.isPaused()).toBe(false);
  });
});

describe("the dead-letter queue", () => {
  it("parks a send that exhausted its attempts, shows it on-hold, lists it (HTTP and CLI), and a replay sends it once", async () => {
    const kit = await startDeliveryService();
    const phone = "+12025550148";
    kit.graph.inject(phone, { kind: "error", code: 131000 }, 3);
    const id = await bookConfirmation(kit, phone);

    const parked = await kit.until(id, "dead-lettered", (r) => r.deadLettered === true);
    expect(parked.state).toBe("queued");
    expect(requestsTo(kit.graph, phone)).toEqual([500, 500, 500]);
    const communication = await kit.communication(id, (c) => c.status === "on-hold");
    expect(communication.statusReason?.text).toMatch(/dead-letter/);

    const listed = (await (await kit.admin("/admin/dlq")).json()) as { entries: { deliveryId?: string; queue: string; jobId: string }[] };
    expect(listed.entries).toEqual([expect.objectContaining({ deliveryId: id, queue: "delivery", jobId: id })]);
    const ready = (await (await kit.admin("/readyz")).json()) as { reasons: string[] };
    expect(ready.reasons).toContain("1 job(s) in the dead-letter queue");

    // The operator CLI reads the same queue.
    const dir = mkdtempSync(join(tmpdir(), "fhir-notify-cli-"));
    const configFile = join(dir, "fhir-notify.yaml");
    writeFileSync(configFile, `redis:\n  url: ${kit.service.redisTarget.url}\n  prefix: ${kit.service.config.redis.prefix}\n`);
    const cli = await run(process.execPath, ["bin/fhir-notify.js", "dlq", "list"], { env: { ...process.env, FHIR_NOTIFY_CONFIG: configFile, LOG_LEVEL: "silent" } });
    const cliEntries = JSON.parse(cli.stdout) as { deliveryId?: string }[];
    expect(cliEntries.map((e) => e.deliveryId)).toEqual([id]);

    const replay = (await (await kit.admin("/admin/dlq/replay", { method: "POST" })).json()) as { replayed: number };
    expect(replay.replayed).toBe(1);
    await kit.until(id, "the message accepted", (r) => r.state === "accepted");
    await kit.communication(id, (c) => c.status === "in-progress" || c.status === "completed");
    expect(kit.graph.sentTo(phone)).toBe(1);
    expect(((await (await kit.admin("/admin/dlq")).json()) as { entries: unknown[] }).entries).toEqual([]);
  });
});

async function waitForHalt(kit: DeliveryKit): Promise<void> {
  await waitFor("the sender halted", async () => ((await (await kit.admin("/admin/sender")).json()) as { halted: boolean }).halted);
}

async function waitForState(kit: DeliveryKit, deliveryId: string, state: string): Promise<void> {
  await waitFor(`send job ${deliveryId} ${state}`, async () => {
    const job = await kit.service.queues.byName.delivery.getJob(deliveryId);
    return job !== undefined && (await job.getState()) === state;
  });
}
