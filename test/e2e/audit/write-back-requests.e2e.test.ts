import { describe, expect, it, onTestFinished } from "vitest";
import { createFhirClient } from "../../../src/fhir/fhir.client.js";
import { fhirClientConfigSchema } from "../../../src/fhir/fhir.config.js";
import { freePort } from "../../../src/redis/embedded-redis.js";
import { createLogger } from "../../../src/shared/logger.js";
import { startFakeGraphApi } from "../../fakes/graph-api.server.js";
import { startRacyFhirServer } from "../../fakes/racy-fhir.server.js";
import { startTestService } from "../../support/start-test-service.js";
import { waitFor } from "../../support/wait-for.js";
import { appSecret, bookedAppointment, communicationsAbout, post, postStatuses, versionsOf, waitForCommunication, waitUntilIdle } from "./audit-harness.js";

describe("Communication write-back over HTTP", () => {
  it("costs one FHIR request per status step once the Communication exists: a PUT with If-Match, no read", async () => {
    // The live Cloud API client against the fake Graph API; FHIR through a recording server in
    // front of the sandbox, so every request the service makes is counted.
    const port = await freePort();
    const fhirServer = await startRacyFhirServer({ upstreamBaseUrl: `http://127.0.0.1:${port}/sandbox/fhir`, raceWindowMs: 50 });
    onTestFinished(() => fhirServer.stop());
    const graph = await startFakeGraphApi();
    onTestFinished(() => graph.stop());
    const fhir = createFhirClient(fhirClientConfigSchema.parse({ baseUrl: fhirServer.baseUrl, retries: 0 }), createLogger("silent"));
    const service = await startTestService({
      config: { http: { port }, whatsapp: { phoneNumberId: graph.phoneNumberId, accessToken: graph.accessToken, apiBase: graph.url, appSecret } },
      fhir,
    });

    const appointment = await post(service, bookedAppointment(service.sandboxSeed!));
    const about = `Appointment/${appointment.id}`;
    const message = await waitFor("the accepted message", () => graph.records[0]);
    const first = await waitForCommunication(service, about, "the in-progress Communication", (c) => c.status === "in-progress");
    await waitUntilIdle(service);

    const t = Math.floor(Date.now() / 1000) + 1;
    for (const [status, offset] of [["delivered", 0], ["read", 5]] as const) {
      const before = fhirServer.requests.length;
      const version = (await versionsOf(service, first.id!)).length;
      await postStatuses(service, graph.phoneNumberId, [
        { wamid: message.wamid, status, timestamp: t + offset, recipientId: message.to, ...(message.callbackData !== undefined ? { callbackData: message.callbackData } : {}) },
      ]);
      await waitFor(`the ${status} step written`, async () => ((await versionsOf(service, first.id!)).length > version ? true : undefined));
      await waitUntilIdle(service);
      const step = fhirServer.requests.slice(before).filter((r) => r.path.startsWith("/Communication"));
      expect(step.map((r) => `${r.method} ${r.path} ${r.ifMatch ?? "-"} ${r.status}`)).toEqual([`PUT /Communication/${first.id!} W/"${version}" 200`]);
    }
    const [final] = await communicationsAbout(service, about);
    expect(final?.status).toBe("completed");
    expect(final?.received).toBe(new Date(t * 1000).toISOString());
    expect(await communicationsAbout(service, about)).toHaveLength(1);
  });
});
