import { deliveryOfCallback } from "../../support/callback-data.js";
import { describe, expect, it } from "vitest";
import type { Bundle } from "fhir/r4";
import { createFhirClient } from "../../../src/fhir/fhir.client.js";
import { fhirClientConfigSchema } from "../../../src/fhir/fhir.config.js";
import { freePort } from "../../../src/redis/embedded-redis.js";
import { createLogger } from "../../../src/shared/logger.js";
import { startTestService } from "../../support/start-test-service.js";
import { waitFor } from "../../support/wait-for.js";
import {
  bookedAppointment,
  communicationWrites,
  communicationsAbout,
  expectValidR4,
  fhirJson,
  notificationKeySystem,
  post,
  postStatuses,
  startLiveService,
  versionsOf,
  waitForCommunication,
  waitUntilIdle,
} from "./audit-harness.js";

const unavailable = JSON.stringify({
  resourceType: "OperationOutcome",
  issue: [{ severity: "error", code: "transient", diagnostics: "database failover in progress" }],
});

describe("the audit trail across FHIR server trouble", () => {
  it("loses nothing and doubles nothing while the FHIR server answers 503 to Communication writes for a while", async () => {
    // The service's own HTTP FHIR client, pointed at the sandbox on a port chosen up front, with a
    // fetch that plays a load balancer in front of a FHIR server whose writes are failing over.
    const port = await freePort();
    let down = true;
    let refused = 0;
    const outageFetch: typeof fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const write = init?.method === "POST" || init?.method === "PUT";
      if (down && write && /\/Communication(\/|$)/.test(url.pathname)) {
        refused++;
        return Promise.resolve(new Response(unavailable, { status: 503, headers: { "content-type": "application/fhir+json" } }));
      }
      return globalThis.fetch(input, init);
    };
    const fhir = createFhirClient(
      fhirClientConfigSchema.parse({ baseUrl: `http://127.0.0.1:${port}/sandbox/fhir`, retries: 1 }),
      createLogger("silent"),
      { fetch: outageFetch, sleep: () => Promise.resolve() },
    );
    const service = await startTestService({ config: { http: { port } }, fhir });
    const audit = service.queues.byName.audit;
    // The audit queue backs off exponentially from 1 s over 25 attempts (hours in all); instead of
    // waiting that out, move each pending retry forward, as an operator would after a fix.
    const promoteRetries = async (belowAttempts = Number.POSITIVE_INFINITY) => {
      for (const job of await audit.getJobs(["delayed"])) if (job.attemptsMade < belowAttempts) await job.promote().catch(() => undefined);
    };

    const appointment = await post(service, bookedAppointment(service.sandboxSeed!));
    const about = `Appointment/${appointment.id}`;
    const entry = await waitFor("the message in the outbox", () => service.outbox!.list()[0]);
    // Every step (queued, accepted, sent, delivered) has its write refused twice, and waits to retry.
    await waitFor("two refused writes for each of the four steps", async () => {
      await promoteRetries(2);
      const waiting = await audit.getJobs(["delayed"]);
      return waiting.length === 4 && waiting.every((j) => j.attemptsMade === 2) ? true : undefined;
    });
    expect(refused).toBeGreaterThanOrEqual(16); // 4 steps × 2 attempts × (1 try + 1 client retry)
    expect(await communicationsAbout(service, about)).toHaveLength(0);

    down = false;
    const final = await waitFor("the completed Communication after the outage", async () => {
      await promoteRetries();
      const found = await communicationsAbout(service, about);
      return found.length === 1 && found[0]?.status === "completed" && (await audit.getJobCounts("delayed", "waiting", "active")).delayed === 0 ? found[0] : undefined;
    });
    await waitUntilIdle(service);

    const deliveryId = await deliveryOfCallback(service, entry.request.biz_opaque_callback_data);
    const byKey = await fhirJson<Bundle>(`${service.fhirBaseUrl}/Communication?identifier=${encodeURIComponent(`${notificationKeySystem}|${deliveryId}`)}`);
    expect(byKey.entry).toHaveLength(1);
    expect(await communicationsAbout(service, about)).toHaveLength(1);
    expect(final.identifier?.map((i) => i.value)).toEqual([deliveryId, entry.wamid]);
    expect(final.received).toBeDefined();
    expectValidR4(final);
    // No job gave up: nothing was dead-lettered, nothing failed for good.
    expect(await audit.getJobCounts("failed")).toEqual({ failed: 0 });
    expect(await service.queues.byName["dead-letter"].getJobCounts("waiting")).toEqual({ waiting: 0 });
    expect((await communicationWrites(service)).created).toBe(1);
  });

  it("recreates a Communication deleted on the server at the next status change", async () => {
    const { service, graph } = await startLiveService();
    const appointment = await post(service, bookedAppointment(service.sandboxSeed!));
    const about = `Appointment/${appointment.id}`;
    const message = await waitFor("the accepted message", () => graph.records[0]);
    const first = await waitForCommunication(service, about, "the in-progress Communication", (c) => c.status === "in-progress");
    await waitUntilIdle(service);

    const deleted = await fetch(`${service.fhirBaseUrl}/Communication/${first.id!}`, { method: "DELETE" });
    expect(deleted.ok).toBe(true);
    expect(await communicationsAbout(service, about)).toHaveLength(0);

    const t = Math.floor(Date.now() / 1000) + 1;
    await postStatuses(service, graph.phoneNumberId, [{ wamid: message.wamid, status: "delivered", timestamp: t, recipientId: message.to, callbackData: message.callbackData! }]);
    const again = await waitForCommunication(service, about, "the recreated Communication", (c) => c.status === "completed");
    await waitUntilIdle(service);

    expect(again.id).not.toBe(first.id);
    expect(again.identifier?.map((i) => i.value)).toEqual([await deliveryOfCallback(service, message.callbackData!), message.wamid]);
    expect(again.sent).toBe(first.sent);
    expect(again.received).toBe(new Date(t * 1000).toISOString());
    expect(again.payload).toEqual(first.payload);
    expect(await versionsOf(service, again.id!)).toHaveLength(1);
    expect((await fetch(`${service.fhirBaseUrl}/Communication/${first.id!}`)).status).toBe(410);
    expectValidR4(again);
  });
});
