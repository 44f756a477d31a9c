import { describe, expect, it } from "vitest";
import { testRedisUrl } from "../support/redis-prefix.js";
import { runScale } from "./scale-scenario.js";

/*
 * The full 2,000-event run is `npm run bench -- --only scale` (bench/scale.bench.ts); here a
 * smaller count keeps CI fast while still racing two processes for the same queues.
 */
const events = 300;

describe("scaling out with worker processes", () => {
  it(
    "sends every message exactly once when two worker processes share one Redis prefix",
    async () => {
      const run = await runScale({ events, workers: 2, redisUrl: testRedisUrl, fhir: "sandbox", timeoutMs: 60_000 });
      expect(run.messages).toBe(events);
      expect(run.duplicates).toBe(0);
    },
    90_000,
  );
});
