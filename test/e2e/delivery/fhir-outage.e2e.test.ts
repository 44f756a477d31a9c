import { describe, expect, it } from "vitest";
import type { Job } from "bullmq";
import { fhirWaitMs } from "../../../src/delivery/send.worker.js";
import { createLedger } from "../../../src/delivery/ledger.js";
import { createFhirClient } from "../../../src/fhir/fhir.client.js";
import { fhirClientConfigSchema } from "../../../src/fhir/fhir.config.js";
import { freePort } from "../../../src/redis/embedded-redis.js";
import { createLogger } from "../../../src/shared/logger.js";
import { bookedAppointment, fhirJson } from "../../support/sandbox-booking.js";
import { repeatedKeys } from "../../support/log-capture.js";
import { startTestService } from "../../support/start-test-service.js";
import { waitFor } from "../../support/wait-for.js";

const unavailable = JSON.stringify({ resourceType: "OperationOutcome", issue: [{ severity: "error", code: "transient", diagnostics: "database failover in progress" }] });

describe("a send while the FHIR server cannot be read", () => {
  it("backs off from 2 s to at most 5 minutes, with jitter", () => {
    expect(fhirWaitMs(1, () => 0.5)).toBe(2_000);
    expect(fhirWaitMs(4, () => 0.5)).toBe(16_000);
    expect(fhirWaitMs(50, () => 0.5)).toBe(300_000);
    expect(fhirWaitMs(50, () => 0)).toBe(225_000);
    expect(fhirWaitMs(50, () => 1)).toBe(375_000);
  });

  it("waits without using its retry attempts, however long the outage, and sends once the server is back", async () => {
    // The service's HTTP FHIR client in front of the sandbox, with a load balancer that answers 503
    // to every read of the resources a send re-checks while `down` is set.
    const port = await freePort();
    let down = false;
    const outageFetch: typeof fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      if (down && (init?.method ?? "GET") === "GET" && /\/(Appointment|Patient|Location|Practitioner|Organization|Consent)(\/|\?|$)/.test(url.pathname)) {
        return Promise.resolve(new Response(unavailable, { status: 503, headers: { "content-type": "application/fhir+json" } }));
      }
      return globalThis.fetch(input, init);
    };
    const fhir = createFhirClient(fhirClientConfigSchema.parse({ baseUrl: `http://127.0.0.1:${port}/sandbox/fhir`, retries: 0 }), createLogger("silent"), {
      fetch: outageFetch,
      sleep: () => Promise.resolve(),
    });
    const service = await startTestService({ config: { http: { port } }, fhir });
    const delivery = service.queues.byName.delivery;
    const ledger = createLedger(service.redis, service.config.redis.prefix);

    // The decision is made while the server is up; the outage starts before the send.
    await delivery.pause();
    await fhirJson(`${service.fhirBaseUrl}/Appointment`, { method: "POST", body: JSON.stringify(bookedAppointment(service.sandboxSeed!, { startsInHours: 20 })) });
    const job: Job = await waitFor("the send job", async () => (await delivery.getJobs(["waiting"]))[0]);
    const deliveryId = String(job.id);
    down = true;
    await delivery.resume();

    // Longer than the 6 attempts a send has: each deferral waits, and none is an attempt.
    for (let n = 1; n <= 8; n++) {
      await waitFor(`deferral ${n}`, async () => ((await delivery.getJobState(deliveryId)) === "delayed" && (await ledger.get(deliveryId))?.fhirWaits === n ? true : undefined));
      const deferred = await delivery.getJob(deliveryId);
      expect(deferred?.attemptsMade).toBe(0);
      await deferred?.promote();
    }
    expect(service.outbox?.list()).toEqual([]);
    expect(await service.queues.byName["dead-letter"].getJobCounts("waiting")).toMatchObject({ waiting: 0 });

    down = false;
    await waitFor("the deferred send after the outage", async () => {
      if ((await delivery.getJobState(deliveryId)) === "delayed") await (await delivery.getJob(deliveryId))?.promote().catch(() => undefined);
      return service.outbox?.list()[0];
    });
    await waitFor("the send job completed", async () => ((await delivery.getJobState(deliveryId)) === "completed" ? true : undefined));
    expect(service.outbox?.list()).toHaveLength(1);
    expect((await delivery.getJob(deliveryId))?.attemptsMade).toBe(1);
    expect((await ledger.get(deliveryId))?.state).not.toBe("not-done");
  });
});

const forbidden = JSON.stringify({ resourceType: "OperationOutcome", issue: [{ severity: "error", code: "forbidden", diagnostics: "scope does not permit Patient.read" }] });

describe("a FHIR server that refuses a read for good (4xx)", () => {
  it("ends the intake and the send job at the first attempt, into the dead-letter queue, instead of retrying", async () => {
    // The service's HTTP FHIR client in front of the sandbox, with a gateway that answers 403 to
    // reads of the types in `refused` (a missing grant: no retry can change it).
    const port = await freePort();
    const refused = new Set<string>();
    const gateway: typeof fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const type = /\/sandbox\/fhir\/([A-Za-z]+)/.exec(url.pathname)?.[1];
      if ((init?.method ?? "GET") === "GET" && type !== undefined && refused.has(type)) {
        return Promise.resolve(new Response(forbidden, { status: 403, headers: { "content-type": "application/fhir+json" } }));
      }
      return globalThis.fetch(input, init);
    };
    const fhir = createFhirClient(fhirClientConfigSchema.parse({ baseUrl: `http://127.0.0.1:${port}/sandbox/fhir`, retries: 0 }), createLogger("silent"), { fetch: gateway, sleep: () => Promise.resolve() });
    const service = await startTestService({ config: { http: { port } }, fhir });
    const { intake, delivery } = service.queues.byName;
    const deadLetters = service.queues.byName["dead-letter"];

    // Intake: the notified Appointment cannot be read.
    refused.add("Appointment");
    await fhirJson(`${service.fhirBaseUrl}/Appointment`, { method: "POST", body: JSON.stringify(bookedAppointment(service.sandboxSeed!, { startsInHours: 20 })) });
    const failedIntake = await waitFor("the intake job failed", async () => (await intake.getJobs(["failed"]))[0]);
    expect(failedIntake.attemptsMade).toBe(1);
    expect(failedIntake.opts.attempts).toBeGreaterThan(1);
    await waitFor("the intake job dead-lettered", async () => (await deadLetters.getJobs(["waiting"])).find((j) => (j.data as { queue: string }).queue === "intake"));

    // Send: decided while the server answered; then the Patient read is refused.
    refused.clear();
    await delivery.pause();
    await fhirJson(`${service.fhirBaseUrl}/Appointment`, { method: "POST", body: JSON.stringify(bookedAppointment(service.sandboxSeed!, { startsInHours: 21 })) });
    await waitFor("the send job", async () => (await delivery.getJobs(["waiting"]))[0]);
    refused.add("Patient");
    await delivery.resume();
    const failedSend = await waitFor("the send job failed", async () => (await delivery.getJobs(["failed"]))[0]);
    expect(failedSend.attemptsMade).toBe(1);
    expect(failedSend.opts.attempts).toBeGreaterThan(1);
    await waitFor("the send job dead-lettered", async () => (await deadLetters.getJobs(["waiting"])).find((j) => (j.data as { queue: string }).queue === "delivery"));
    expect(service.outbox?.list()).toEqual([]);

    // The log names the job (not hidden by the `name` redaction) and never repeats a key in a line.
    const failedLines = service.logs.lines.map((l) => JSON.parse(l) as { msg: string; jobName?: string }).filter((l) => l.msg === "job attempt failed");
    expect(failedLines.map((l) => l.jobName).sort()).toEqual(["process-event", "send-message"]);
    expect(service.logs.lines.flatMap((l) => repeatedKeys(l).map((k) => `${k} in ${l.slice(0, 200)}`))).toEqual([]);
  });
});
