import { describe, expect, it, onTestFinished } from "vitest";
import { createFhirClient } from "../../../src/fhir/fhir.client.js";
import { fhirClientConfigSchema } from "../../../src/fhir/fhir.config.js";
import { freePort } from "../../../src/redis/embedded-redis.js";
import { createLogger } from "../../../src/shared/logger.js";
import { startRacyFhirServer } from "../../fakes/racy-fhir.server.js";
import { startTestService } from "../../support/start-test-service.js";
import { waitFor } from "../../support/wait-for.js";
import { bookedAppointment, byIdentifier, communicationWrites, communicationsAbout, notificationKeySystem, post, waitUntilIdle } from "./audit-harness.js";

/**
 * The service's own HTTP FHIR client against a FHIR server whose conditional create is a search
 * followed by a create (older HAPI, Microsoft's fhir-server): two creates for one delivery in
 * flight at once both land, unless the audit steps of that delivery take turns.
 */
async function startBehindRacyFhir() {
  const port = await freePort();
  const racy = await startRacyFhirServer({ upstreamBaseUrl: `http://127.0.0.1:${port}/sandbox/fhir`, raceWindowMs: 1_000 });
  onTestFinished(() => racy.stop());
  const fhir = createFhirClient(fhirClientConfigSchema.parse({ baseUrl: racy.baseUrl, retries: 1 }), createLogger("silent"), { sleep: () => Promise.resolve() });
  const service = await startTestService({ config: { http: { port } }, fhir });
  return { racy, service };
}

describe("audit steps of one delivery on a FHIR server with a non-atomic conditional create", () => {
  it("writes exactly one Communication when the queued and accepted steps run at the same time, and dead-letters nothing", async () => {
    const { racy, service } = await startBehindRacyFhir();
    const appointment = await post(service, bookedAppointment(service.sandboxSeed!));
    const about = `Appointment/${appointment.id}`;
    await waitFor("the message in the outbox", () => service.outbox!.list()[0]);

    await waitFor("the completed Communication", async () => {
      const found = await communicationsAbout(service, about);
      return found.some((c) => c.status === "completed") ? found : undefined;
    });
    await waitUntilIdle(service);

    const found = await communicationsAbout(service, about);
    expect(found).toHaveLength(1);
    const key = found[0]?.identifier?.find((i) => i.system === notificationKeySystem)?.value;
    expect(await byIdentifier(service, "Communication", notificationKeySystem, key ?? "")).toHaveLength(1);
    expect(racy.racedCreates).toBe(1);
    expect((await communicationWrites(service)).created).toBe(1);
    expect(await service.queues.byName.audit.getJobCounts("failed")).toEqual({ failed: 0 });
    expect(await service.queues.byName["dead-letter"].getJobCounts("waiting", "delayed", "completed", "failed")).toEqual({ waiting: 0, delayed: 0, completed: 0, failed: 0 });
  });
});
