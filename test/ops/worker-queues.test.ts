import { deliveryOfCallback } from "../support/callback-data.js";
import type { Bundle, Communication } from "fhir/r4";
import { describe, expect, it, onTestFinished } from "vitest";
import { createLedger } from "../../src/delivery/ledger.js";
import { bookedAppointment, fhirJson } from "../support/sandbox-booking.js";
import { startTestService } from "../support/start-test-service.js";
import { testRedisUrl } from "../support/redis-prefix.js";
import { waitFor } from "../support/wait-for.js";
import { startWorkerProcess } from "./worker-processes.js";

describe("worker processes dedicated to some queues (WORKER_QUEUES)", () => {
  it(
    "sends from a process without the audit queue, and a process serving only audit writes the Communication",
    async () => {
      const service = await startTestService({ config: { workers: { queues: ["intake", "delivery", "webhook"] } } });
      const seed = service.sandboxSeed!;
      const appointment = await fhirJson<{ id: string }>(`${service.fhirBaseUrl}/Appointment`, {
        method: "POST",
        body: JSON.stringify(bookedAppointment(seed, { startsInHours: 20 })),
      });

      const sent = await waitFor("the confirmation in the outbox", () => service.outbox?.list().find((m) => m.request.template.name.startsWith("appointment_confirmation")));
      const token = sent.request.biz_opaque_callback_data;
      const deliveryId = await deliveryOfCallback(service, token);
      expect(deliveryId).toContain(appointment.id);
      const ledger = createLedger(service.redis, service.config.redis.prefix);
      await waitFor("the outbox's delivered status applied", async () => ((await ledger.get(deliveryId))?.state === "delivered" ? true : undefined));
      // Nobody serves the audit queue yet: every write-back (queued, accepted, delivered) waits there.
      expect((await service.queues.byName.audit.getJobCounts("waiting")).waiting).toBeGreaterThanOrEqual(3);
      const search = () => fhirJson<Bundle>(`${service.fhirBaseUrl}/Communication?subject=Patient/${seed.patientId}`);
      expect((await search()).entry ?? []).toEqual([]);

      const auditor = await startWorkerProcess({
        http: { port: 0 },
        log: { level: "warn" },
        redis: { url: testRedisUrl, prefix: service.config.redis.prefix },
        fhir: { baseUrl: service.fhirBaseUrl },
        mapping: { consent: { mode: "none" } },
        workers: { queues: ["audit"] },
      });
      onTestFinished(() => auditor.stop());

      const communication = await waitFor("the Communication, written by the audit-only process", async () =>
        (await search()).entry?.map((e) => e.resource as Communication).find((c) => c.identifier?.some((i) => i.value === deliveryId) && c.status === "completed"),
      );
      expect(communication.about?.[0]?.reference).toMatch(new RegExp(`^Appointment/${appointment.id}`));
      // It never sent anything: the outbox (in the first process) still holds exactly one message.
      expect(service.outbox?.list().filter((m) => m.request.biz_opaque_callback_data === token)).toHaveLength(1);
    },
    60_000,
  );
});
