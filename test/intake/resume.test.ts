import { describe, expect, it } from "vitest";
import type { Queues } from "../../src/delivery/queues.js";
import { createIntake, type IntakeRequest } from "../../src/intake/accept.js";
import { createGapTracker } from "../../src/intake/gap-tracker.js";
import { sourceConfigSchema } from "../../src/intake/source.config.js";
import { createWatermarks } from "../../src/intake/watermark.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetrics } from "../../src/shared/metrics.js";
import { ownedQueues } from "../support/redis-prefix.js";

const token = "hapi-token-0123456789abcdef";
const sources = { hapi: sourceConfigSchema.parse({ auth: { type: "bearer", token }, resourceTypes: ["Appointment", "DiagnosticReport"] }) };

/** HAPI's rest-hook with payload (reference §3): PUT {endpoint}/Appointment/{id} with the resource. */
function put(id: string, versionId: string, lastUpdated: string): IntakeRequest {
  const body = { resourceType: "Appointment", id, meta: { versionId, lastUpdated }, status: "booked", participant: [{ actor: { reference: "Patient/pat-1001" }, status: "accepted" }] };
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, "content-type": "application/fhir+json;charset=UTF-8" };
  return { source: "hapi", method: "PUT", pathType: "Appointment", pathId: id, contentType: headers["content-type"], header: (n) => headers[n.toLowerCase()], raw: Buffer.from(JSON.stringify(body)), fromLoopback: false, receivedAt: new Date().toISOString() };
}

/** Real queues on real Redis, with a switch that makes every write fail as a Redis outage does. */
function queuesThatCanFail(queues: Queues) {
  const state = { down: false };
  const outage = () => Promise.reject(new Error("Connection is closed."));
  const wrapped: Queues = {
    ...queues,
    enqueue: (name, data, options) => (state.down ? outage() : queues.enqueue(name, data, options)),
    enqueueBulk: (name, jobs) => (state.down ? outage() : queues.enqueueBulk(name, jobs)),
  };
  return { wrapped, state };
}

describe("a notification refused with 503 (Redis could not take it)", () => {
  it("makes the next accepted one queue a catch-up from the marks before it, so what the server gave up on is searched for", async () => {
    const { redis, prefix, queues } = ownedQueues();
    const marks = createWatermarks(redis, prefix);
    const { wrapped, state } = queuesThatCanFail(queues);
    const log = createLogger("silent");
    const intake = createIntake({ sources, queues: wrapped, gaps: createGapTracker(redis, prefix), marks, metrics: createMetrics({ defaultMetrics: false }), log });
    await marks.advance("hapi", "Appointment", "2026-11-25T09:58:00.120+00:00");

    state.down = true;
    await expect(intake.accept(put("apt-1", "1", "2026-11-25T10:00:00.000+00:00"), () => log)).rejects.toMatchObject({ code: "transient" });
    state.down = false;
    // The server gave up on apt-1 (Medplum: 4 attempts in ~7 s); the next change arrives normally.
    await intake.accept(put("apt-2", "1", "2026-11-25T10:05:00.000+00:00"), () => log);
    await intake.accept(put("apt-3", "1", "2026-11-25T10:06:00.000+00:00"), () => log);

    const jobs = await queues.byName.intake.getJobs(["waiting"]);
    expect(jobs.filter((j) => j.name === "catch-up").map((j) => j.data as unknown)).toEqual([
      { source: "hapi", reason: "outage", receivedAt: expect.any(String) as string, since: { Appointment: "2026-11-25T09:58:00.120+00:00" } },
    ]);
    expect(jobs.filter((j) => j.name === "process-event").map((j) => (j.data as { id: string }).id).sort()).toEqual(["apt-2", "apt-3"]);
  });
});

describe("watermarks", () => {
  it("only rise, comparing instants whatever their offset or precision", async () => {
    const { redis, prefix } = ownedQueues();
    const marks = createWatermarks(redis, prefix);
    await marks.advance("hapi", "Appointment", "2026-11-25T10:00:00.000+01:00");
    await marks.advance("hapi", "Appointment", "2026-11-25T09:30:00Z"); // 30 min later than the first
    await marks.advance("hapi", "Appointment", "2026-11-25T09:10:00.5Z"); // earlier: ignored
    await marks.advance("hapi", "Appointment", "not a date");
    await Promise.all(["09:31", "09:33", "09:32"].map((t) => marks.advance("hapi", "Appointment", `2026-11-25T${t}:00Z`)));
    expect(await marks.get("hapi", "Appointment")).toBe("2026-11-25T09:33:00Z");
    expect(await marks.snapshot("hapi", ["Appointment", "DiagnosticReport"])).toEqual({ Appointment: "2026-11-25T09:33:00Z" });
  });
});
