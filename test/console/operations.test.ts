import { UnrecoverableError, Worker } from "bullmq";
import { describe, expect, it } from "vitest";
import { confirmationFields } from "../fixtures/delivery-record.js";
import { testRedisUrl } from "../support/redis-prefix.js";
import { waitFor } from "../support/wait-for.js";
import { consoleWorld } from "./support.js";

const form = (body: string) => ({ method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "same-origin" }, body });

describe("the console's operations page", () => {
  it("replays a dead letter after a confirm step, and the original job runs again", async () => {
    const world = consoleWorld();
    const f = confirmationFields(1);
    await world.ledger.create(f);
    // A send that fails for good, as the send worker's permanent errors do.
    const worker = new Worker(
      world.queues.byName.delivery.name,
      () => {
        throw new UnrecoverableError("WhatsApp refused the template (132001)");
      },
      { connection: { url: testRedisUrl }, prefix: world.prefix },
    );
    worker.on("failed", (job, err) => void world.deadLetters.onFailed("delivery", job, err));
    const job = await world.queues.enqueue("send-message", { deliveryId: f.deliveryId }, { jobId: "send-a1" });
    await waitFor("the job is dead-lettered", async () => (await world.deadLetters.list()).length === 1);
    await worker.close();

    const page = await (await world.app.request("/console/operations")).text();
    expect(page).toContain("Dead-letter queue (1)");
    expect(page).toContain("WhatsApp refused the template (132001)");
    const [entry] = await world.deadLetters.list();
    expect(page).toContain(`href="/console/operations/dlq/${entry!.id}/replay"`);

    const confirm = await world.app.request(`/console/operations/dlq/${entry!.id}/replay`);
    expect(confirm.status).toBe(200);
    const confirmHtml = await confirm.text();
    expect(confirmHtml).toContain("Replay this dead letter?");
    expect(confirmHtml).toContain(`name="id" value="${entry!.id}"`);
    // Nothing happens on the confirm page itself.
    expect(await world.deadLetters.list()).toHaveLength(1);

    const done = await world.app.request("/console/operations/dlq/replay", form(`id=${entry!.id}`));
    expect(done.status).toBe(303);
    expect(done.headers.get("location")).toBe("/console/operations?done=replayed.1.0");
    expect(await world.deadLetters.list()).toEqual([]);
    expect(await (await world.queues.byName.delivery.getJob(job.id!))!.getState()).toBe("waiting");
    expect(await (await world.app.request(done.headers.get("location")!)).text()).toContain("Replayed 1 job(s).");
  });

  it("replays every dead letter from the Replay all confirm page", async () => {
    const world = consoleWorld();
    for (const n of [1, 2]) await world.queues.enqueue("dead-letter", { queue: "delivery", jobId: `send-gone-${n}`, name: "send-message", reason: "WhatsApp refused the template (132001)" }, { jobId: `dl_all_${n}` });
    const confirm = await (await world.app.request("/console/operations/dlq/all/replay")).text();
    expect(confirm).toContain("Replay all 2 dead letters?");
    expect(confirm).toContain('name="all" value="1"');
    const done = await world.app.request("/console/operations/dlq/replay", form("all=1"));
    expect(done.headers.get("location")).toBe("/console/operations?done=replayed.0.2");
    expect(await world.deadLetters.list()).toEqual([]);
    // Nothing chosen is a plain 400, not a replay of everything.
    expect((await world.app.request("/console/operations/dlq/replay", form(""))).status).toBe(400);
  });

  it("refuses an action posted from another site", async () => {
    const world = consoleWorld();
    const res = await world.app.request("/console/operations/sender/pause", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "cross-site" }, body: "" });
    expect(res.status).toBe(403);
    expect((await world.senderState.status()).halted).toBe(false);
  });

  it("pauses and resumes the sender, and shows queue depths and template holds", async () => {
    const world = consoleWorld();
    await world.templateHolds.apply("appointment_confirmation_v1", "es", "status", { code: "paused", since: "2026-11-25T08:00:00.000Z" }, "2026-11-25T08:00:00.000Z");

    expect((await world.app.request("/console/operations/sender/pause", form(""))).status).toBe(303);
    expect((await world.senderState.status()).halted).toBe(true);
    expect(await world.queues.byName.delivery.isPaused()).toBe(true);
    const paused = await (await world.app.request("/console/operations?done=paused")).text();
    expect(paused).toContain('data-sender="paused"');
    expect(paused).toContain("Sending is paused.");
    expect(paused).toMatch(/data-template="appointment_confirmation_v1\|es">.*paused by WhatsApp/s);
    expect(paused).toMatch(/data-template="appointment_confirmation_v1\|en_US">.*in use/s);
    expect(paused).toContain('data-queue="delivery"');
    expect(paused).toContain('href="/admin/queues"');

    await world.app.request("/console/operations/sender/resume", form(""));
    expect((await world.senderState.status()).halted).toBe(false);
    expect(await world.queues.byName.delivery.isPaused()).toBe(false);
  });

  it("still shows the page when the FHIR server cannot list subscriptions", async () => {
    const world = consoleWorld({ subscriptions: () => Promise.reject(new Error("connect ECONNREFUSED")) });
    const res = await world.app.request("/console/operations");
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("could not be asked for our Subscriptions");
  });
});
