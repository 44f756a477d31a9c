import { describe, expect, it } from "vitest";
import { createLedger } from "../../src/delivery/ledger.js";
import { confirmationFields } from "../fixtures/delivery-record.js";
import type { Queues } from "../../src/delivery/queues.js";
import { createStatusUpdates } from "../../src/delivery/status-updates.js";
import { createUnknownOutcomes } from "../../src/delivery/unknown-outcomes.js";
import { createCallbackTokens } from "../../src/delivery/whatsapp/callback-tokens.js";
import { createWebhookIntake } from "../../src/delivery/webhook-intake.js";
import { createTemplateGovernance } from "../../src/delivery/template-governance.js";
import { createTemplateHolds } from "../../src/delivery/template-holds.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetrics } from "../../src/shared/metrics.js";
import { buildStatusWebhook, signWebhook } from "../fakes/graph-api.server.js";
import { ownedQueues } from "../support/redis-prefix.js";

const appSecret = "status-test-app-secret";
const phoneNumberId = "106540352242922";
const ts = Date.parse("2026-11-25T10:00:00Z") / 1000;

function setup() {
  const { redis, prefix, queues } = ownedQueues();
  const ledger = createLedger(redis, prefix);
  const deps = { ledger, queues, unknownOutcomes: createUnknownOutcomes(redis, prefix), callbackTokens: createCallbackTokens(redis, prefix, 3600), log: createLogger("silent"), metrics: createMetrics({ defaultMetrics: false }) };
  const governance = createTemplateGovernance({ holds: createTemplateHolds(redis, prefix), knownTemplates: new Set(), metrics: deps.metrics, log: deps.log });
  return { queues, ledger, deps, governance, updates: createStatusUpdates(deps) };
}

const delivery = (n: number) => confirmationFields(n);

/** A delivery WhatsApp accepted, as the send worker leaves it. */
async function accepted(ledger: ReturnType<typeof createLedger>, n: number): Promise<{ deliveryId: string; wamid: string; parked: string[] }> {
  const fields = { ...delivery(n), inFlightSince: "2026-11-25T09:59:30.000Z" };
  await ledger.create(fields);
  const parked = await ledger.recordAccepted(fields, `wamid.HBgL${n}`, { state: "accepted", at: "2026-11-25T09:59:31.000Z" }, Date.parse("2026-11-25T21:59:31.000Z"));
  return { deliveryId: fields.deliveryId, wamid: `wamid.HBgL${n}`, parked };
}

async function auditJobIds(queues: Queues): Promise<string[]> {
  const jobs = await queues.byName.audit.getJobs(["waiting", "delayed", "prioritized"]);
  return jobs.map((j) => j.id ?? "").sort();
}

describe("status webhooks applied to the ledger", () => {
  it("queues a POST's statuses in jobs of 100, and the same POST again as the same jobs", async () => {
    const { queues, deps, governance } = setup();
    const accept = createWebhookIntake({ queues, metrics: deps.metrics, appSecret, phoneNumberId, governance });
    const body = buildStatusWebhook({
      phoneNumberId,
      statuses: Array.from({ length: 250 }, (_, n) => ({ wamid: `wamid.HBgL${n}`, status: "delivered" as const, timestamp: ts, callbackData: delivery(n).deliveryId })),
    });
    const raw = new TextEncoder().encode(body);

    expect(await accept(raw, signWebhook(body, appSecret), false, new Date().toISOString(), deps.log)).toBe(250);
    await accept(raw, signWebhook(body, appSecret), false, new Date().toISOString(), deps.log);

    const jobs = await queues.byName.webhook.getJobs(["waiting"]);
    expect(jobs.map((j) => j.name)).toEqual(["apply-statuses", "apply-statuses", "apply-statuses"]);
    expect(jobs.map((j) => (j.data as { statuses: unknown[] }).statuses.length).sort()).toEqual([100, 100, 50]);
  });

  it("ends at read with every time known, whatever the order and however often the statuses arrive", async () => {
    const { ledger, queues, updates } = setup();
    const { deliveryId, wamid } = await accepted(ledger, 1);
    const status = (s: "sent" | "delivered" | "read", at: number) => ({ wamid, status: s, timestamp: new Date((ts + at) * 1000).toISOString(), callbackData: deliveryId });

    const first = await updates.apply(status("read", 20));
    const batch = await updates.worker({ name: "apply-statuses", data: { statuses: [status("delivered", 10), status("read", 20), status("sent", 1)] } } as never);

    expect(first).toBe("applied");
    expect(batch).toBe("applied 2, duplicate 1, parked 0");
    const record = await ledger.get(deliveryId);
    // Sent time is WhatsApp's acceptance (FHIR's "sent"); the later sent status does not move it.
    expect(record).toMatchObject({ state: "read", wamid, sentAt: "2026-11-25T09:59:31.000Z", deliveredAt: status("delivered", 10).timestamp, readAt: status("read", 20).timestamp });
    expect(record?.history.map((e) => e.state)).toEqual(["accepted", "read", "delivered", "sent"]);
    // One audit write per step reached: read, then delivered under it; the duplicate read and the
    // late sent add none.
    expect(await auditJobIds(queues)).toEqual([`audit_${deliveryId}_read-sdr`, `audit_${deliveryId}_read-sr`]);
  });

  it("decides a send whose outcome was unknown: the delivery leaves the list, and the metric counts it once", async () => {
    const { ledger, deps, updates } = setup();
    const fields = { ...delivery(6), inFlightSince: "2026-11-25T09:59:30.000Z", inFlightAttempt: 1 };
    await ledger.create(fields);
    await deps.unknownOutcomes.open({ deliveryId: fields.deliveryId, since: fields.inFlightSince, attempt: 1 });
    const sent = { wamid: "wamid.HBgL6", status: "sent" as const, timestamp: new Date(ts * 1000).toISOString(), callbackData: fields.deliveryId };

    expect(await updates.apply(sent)).toBe("applied");
    expect(await updates.apply(sent)).toBe("duplicate");

    expect(await ledger.get(fields.deliveryId)).toMatchObject({ state: "sent", wamid: "wamid.HBgL6" });
    expect((await ledger.get(fields.deliveryId))?.inFlightSince).toBeUndefined();
    expect(await deps.unknownOutcomes.list(10)).toEqual([]);
    expect((await deps.metrics.unknownOutcomes.get()).values).toEqual([{ labels: { event: "decided" }, value: 1 }]);
  });

  it("counts a state change once: a second `sent` for the same message, identical or late, adds nothing", async () => {
    const { ledger, deps, updates } = setup();
    const { deliveryId, wamid } = await accepted(ledger, 7);
    const sent = (at: number) => ({ wamid, status: "sent" as const, timestamp: new Date((ts + at) * 1000).toISOString(), callbackData: deliveryId });
    const sentCount = async () => (await deps.metrics.messages.get()).values.find((v) => v.labels.state === "sent")?.value ?? 0;

    expect(await updates.apply(sent(1))).toBe("applied");
    expect(await sentCount()).toBe(1);
    // The same webhook again, then Meta's late repeat with a later timestamp: the state stays sent.
    expect(await updates.apply(sent(1))).toBe("duplicate");
    expect(await updates.apply(sent(5))).toBe("applied");
    expect(await sentCount()).toBe(1);
    expect((await ledger.get(deliveryId))?.state).toBe("sent");
  });

  it("finds the delivery by its opaque callback token, and by the delivery id an older build sent", async () => {
    const { ledger, deps, updates } = setup();
    const first = await accepted(ledger, 8);
    const token = await deps.callbackTokens.tokenFor(first.deliveryId);
    // No wamid index to fall back on: only the callback data can name these deliveries.
    const byToken = { wamid: "wamid.HBgLnotIndexed8", status: "delivered" as const, timestamp: new Date(ts * 1000).toISOString(), callbackData: token };
    expect(await updates.apply(byToken)).toBe("applied");
    expect((await ledger.get(first.deliveryId))?.state).toBe("delivered");

    const legacy = delivery(9);
    await ledger.create(legacy);
    expect(await updates.apply({ wamid: "wamid.HBgLnotIndexed9", status: "sent", timestamp: new Date(ts * 1000).toISOString(), callbackData: legacy.deliveryId })).toBe("applied");
    expect((await ledger.get(legacy.deliveryId))?.state).toBe("sent");
  });

  it("finds the delivery by wamid when Meta sends no callback data, and records a failure's code", async () => {
    const { ledger, updates } = setup();
    const { deliveryId, wamid } = await accepted(ledger, 2);

    expect(await updates.apply({ wamid, status: "failed", timestamp: new Date(ts * 1000).toISOString(), errorCode: 131026 })).toBe("applied");

    expect(await ledger.get(deliveryId)).toMatchObject({ state: "failed", vendorCode: 131026, reason: "whatsapp-permanent" });
  });

  it("parks a status that overtook the send response and applies it once the wamid is known", async () => {
    const { ledger, queues, updates } = setup();
    const early = { wamid: "wamid.HBgL3", status: "delivered" as const, timestamp: new Date(ts * 1000).toISOString() };

    expect(await updates.apply(early)).toBe("parked");
    // The send worker's acceptance takes the parked statuses in the same step that stores the wamid.
    const { deliveryId, parked } = await accepted(ledger, 3);
    expect(parked.map((raw) => JSON.parse(raw) as unknown)).toEqual([early]);
    await updates.replayParked(parked);

    const [replay] = await queues.byName.webhook.getJobs(["waiting"]);
    expect(replay?.name).toBe("apply-statuses");
    expect(await updates.worker(replay!)).toBe("applied 1, duplicate 0, parked 0");
    expect((await ledger.get(deliveryId))?.state).toBe("delivered");
    // Taken, not copied: a second acceptance (a retried job) finds nothing to replay.
    expect((await accepted(ledger, 3)).parked).toEqual([]);
  });

  it("still takes a send in doubt off the list on a retry after resolving it failed the first time", async () => {
    const { ledger, deps } = setup();
    const fields = { ...delivery(7), inFlightSince: "2026-11-25T09:59:30.000Z", inFlightAttempt: 1 };
    await ledger.create(fields);
    await deps.unknownOutcomes.open({ deliveryId: fields.deliveryId, since: fields.inFlightSince, attempt: 1 });
    let failNext = true;
    const flaky = {
      resolve: (deliveryId: string) => {
        if (failNext) {
          failNext = false;
          return Promise.reject(new Error("connection lost"));
        }
        return deps.unknownOutcomes.resolve(deliveryId);
      },
    };
    const updates = createStatusUpdates({ ...deps, unknownOutcomes: flaky });
    const sent = { wamid: "wamid.HBgL7", status: "sent" as const, timestamp: new Date(ts * 1000).toISOString(), callbackData: fields.deliveryId };

    await expect(updates.apply(sent)).rejects.toThrow("connection lost");
    // BullMQ retries the job: the event is already in the ledger, the entry still listed.
    expect(await updates.apply(sent)).toBe("duplicate");

    expect(await deps.unknownOutcomes.list(10)).toEqual([]);
    expect((await deps.metrics.unknownOutcomes.get()).values).toEqual([{ labels: { event: "decided" }, value: 1 }]);
  });

  it("still queues the audit write on a retry after queueing it failed the first time", async () => {
    const { ledger, queues, deps } = setup();
    const { deliveryId, wamid } = await accepted(ledger, 4);
    let failNext = true;
    const flaky: Queues = {
      ...queues,
      enqueueBulk: (name, items) => {
        if (failNext) {
          failNext = false;
          return Promise.reject(new Error("connection lost"));
        }
        return queues.enqueueBulk(name, items);
      },
    };
    const updates = createStatusUpdates({ ...deps, queues: flaky });
    const delivered = { wamid, status: "delivered" as const, timestamp: new Date(ts * 1000).toISOString(), callbackData: deliveryId };

    await expect(updates.apply(delivered)).rejects.toThrow("connection lost");
    // BullMQ retries the job: the event is already in the ledger, the audit job is not.
    expect(await updates.apply(delivered)).toBe("duplicate");

    expect(await auditJobIds(queues)).toEqual([`audit_${deliveryId}_delivered-sd`]);
  });
});
