import type { Job } from "bullmq";
import type { Appointment } from "fhir/r4";
import { describe, expect, it } from "vitest";
import { processEvent, type ProcessEventDeps } from "../../src/intake/process-event.worker.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetrics } from "../../src/shared/metrics.js";
import { systemClock } from "../../src/shared/clock.js";
import { FakeFhir } from "../fakes/fhir.fake.js";

const appointment: Appointment = { resourceType: "Appointment", id: "apt-7781", status: "booked", participant: [{ actor: { reference: "Patient/pat-1001" }, status: "accepted" }] };

/** A FHIR server holding versions 1 and 2, and a worker whose decision steps only record that they ran. */
function setup() {
  const fhir = new FakeFhir();
  fhir.put(appointment);
  fhir.put({ ...appointment, comment: "second version" });
  const decided: string[] = [];
  const deps = {
    fhir,
    mapping: { rules: [], match: () => [] },
    scheduler: { schedule: () => Promise.resolve({ queued: [], duplicates: [], cancelled: [], skipped: [] }) },
    ledger: {},
    state: { get: () => Promise.resolve(undefined), set: (_s: string, ref: string) => Promise.resolve(void decided.push(ref)), forget: () => Promise.resolve() },
    marks: { advance: () => Promise.resolve(), touch: () => Promise.resolve() },
    clock: systemClock,
    log: createLogger("silent"),
    metrics: createMetrics({ defaultMetrics: false }),
    serverOf: () => "srv-hapi",
  } as unknown as ProcessEventDeps;
  const run = (versionId: string) =>
    processEvent(deps)({
      id: `intake_hapi_Appointment_apt-7781_v${versionId}`,
      data: { source: "hapi", resourceType: "Appointment", id: "apt-7781", versionId, interaction: "update", receivedAt: new Date().toISOString(), shape: "rest-hook-resource" },
    } as unknown as Job);
  return { run, decided };
}

describe("process-event re-reads before deciding", () => {
  it("fails the attempt, so it is retried, when the server returns an older version than the one notified", async () => {
    const { run, decided } = setup();
    await expect(run("3")).rejects.toThrow(/version 2 of Appointment, older than the notified version 3/);
    expect(decided).toEqual([]);
  });

  it("decides on the current version when it is the notified one or a newer one", async () => {
    const { run, decided } = setup();
    await run("2");
    await run("1");
    expect(decided).toEqual(["Appointment/apt-7781", "Appointment/apt-7781"]);
  });

  it("cannot order opaque version ids and decides on what it read", async () => {
    const { run, decided } = setup();
    await run("c2f1d9a4-5b7e-4c1d-9f3a-7e8b6a5d4c21");
    expect(decided).toHaveLength(1);
  });
});
