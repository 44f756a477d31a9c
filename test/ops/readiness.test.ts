import { describe, expect, it } from "vitest";
import type { Bundle, Subscription } from "fhir/r4";
import { startTestService } from "../support/start-test-service.js";
import { dueSince } from "../../src/http/routes/queue-health.js";
import { scrape, total } from "./prometheus-text.js";
import { startWorkerProcess } from "./worker-processes.js";

interface Readiness {
  status: string;
  reasons?: string[];
}

const readyz = async (url: string) => {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as Readiness };
};

describe("readiness and queue health", () => {
  it("reports degraded when a job has waited for a worker longer than the configured limit", async () => {
    // api role: nothing consumes the intake queue, as when every worker is down.
    const service = await startTestService({ role: "api", config: { ops: { oldestWaitingDegradedSeconds: 300, queueStatsCacheMs: 0 } } });
    expect((await readyz(service.url)).body.status).toBe("ready");

    const tenMinutesAgo = Date.now() - 10 * 60_000;
    await service.queues.enqueue(
      "process-event",
      { source: "sandbox", resourceType: "Appointment", id: "a1", versionId: "1", interaction: "create", receivedAt: new Date(tenMinutesAgo).toISOString(), shape: "id-only" },
      { jobId: "intake_sandbox_Appointment_a1_v1", timestamp: tenMinutesAgo },
    );

    const { status, body } = await readyz(service.url);
    expect(status).toBe(200);
    expect(body.status).toBe("degraded");
    expect(body.reasons?.some((r) => r.startsWith("oldest waiting intake job has waited"))).toBe(true);
    const { samples } = await scrape(service.url);
    expect(total(samples, "fhir_notify_queue_oldest_waiting_seconds", { queue: "intake" })).toBeGreaterThanOrEqual(600);
    expect(total(samples, "fhir_notify_queue_jobs", { queue: "intake", state: "waiting" })).toBe(1);
  });

  it("reports degraded when the FHIR server switched one of our Subscriptions to error", async () => {
    const service = await startTestService({ role: "api" });
    const bundle = (await (await fetch(`${service.fhirBaseUrl}/Subscription`)).json()) as Bundle;
    const ours = bundle.entry?.map((e) => e.resource as Subscription).find((s) => s.channel.endpoint?.endsWith("/hooks/fhir/sandbox"));
    expect(ours).toBeDefined();
    const res = await fetch(`${service.fhirBaseUrl}/Subscription/${ours!.id}`, {
      method: "PUT",
      headers: { "content-type": "application/fhir+json" },
      body: JSON.stringify({ ...ours, status: "error", error: "endpoint answered 500 three times" }),
    });
    expect(res.ok).toBe(true);

    const { body } = await readyz(service.url);
    expect(body.status).toBe("degraded");
    expect(body.reasons).toContainEqual(expect.stringContaining("a Subscription of source sandbox is in error on the FHIR server"));
    const { samples } = await scrape(service.url);
    expect(total(samples, "fhir_notify_subscriptions", { source: "sandbox", status: "error" })).toBe(1);
  });

  it("serves health, readiness and metrics, but no intake, from a worker-role process", async () => {
    const api = await startTestService({ role: "api" });
    const worker = await startWorkerProcess({
      http: { port: 0 },
      redis: { url: api.config.redis.url, prefix: api.config.redis.prefix },
      fhir: { baseUrl: api.fhirBaseUrl, auth: { type: "none" } },
      log: { level: "warn" },
    });
    // Stopped here, before the api service's own cleanup deletes the prefix under it.
    try {
      expect((await fetch(`${worker.url}/healthz`)).status).toBe(200);
      expect((await readyz(worker.url)).body.status).toBe("ready");
      expect((await scrape(worker.url)).text).toContain("fhir_notify_messages_total");
      expect((await fetch(`${worker.url}/hooks/fhir/sandbox`, { method: "POST", body: "{}" })).status).toBe(404);
    } finally {
      await worker.stop();
    }
  });
});

describe("when a waiting job became due", () => {
  it("counts from creation, plus the requested delay, or from the last attempt when it ran before", () => {
    expect(dueSince({ timestamp: 1_000, opts: {}, processedOn: undefined })).toBe(1_000);
    expect(dueSince({ timestamp: 1_000, opts: { delay: 5_000 }, processedOn: undefined })).toBe(6_000);
    expect(dueSince({ timestamp: 1_000, opts: { delay: 5_000 }, processedOn: 9_000 })).toBe(9_000);
  });
});
