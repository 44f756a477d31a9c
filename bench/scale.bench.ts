import { availableParallelism, loadavg } from "node:os";
import { runScale, type ScaleRun } from "../test/ops/scale-scenario.js";
import { IndexedFhir } from "./indexed-fhir.js";

export interface ScaleBenchResult {
  one: ScaleRun;
  two: ScaleRun;
  /** two.perSecond / one.perSecond: 2.0 is perfect scaling. */
  speedup: number;
  cores: number;
  /** 1-minute load average when the runs finished: on a shared machine it explains a lot. */
  load: number;
}

/**
 * Messages per second through worker-role processes: n events, drained by one worker process and
 * then by two, in the same run, on one Redis, against an in-memory FHIR server over HTTP (indexed
 * by identifier, so the audit's conditional creates do not scan every Communication) and the
 * fake Graph API (loopback only). Both runs also check that no recipient got a message twice.
 * Scaling is bounded by the cores: with the api process, Redis and both fakes on the same
 * machine, two workers on two cores cannot double.
 */
export async function benchScale(n: number, redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379"): Promise<ScaleBenchResult> {
  const timeoutMs = Math.max(90_000, n * 100);
  const one = await runScale({ events: n, workers: 1, redisUrl, fhir: "memory", store: new IndexedFhir(), timeoutMs });
  const two = await runScale({ events: n, workers: 2, redisUrl, fhir: "memory", store: new IndexedFhir(), timeoutMs });
  for (const run of [one, two]) {
    if (run.duplicates > 0 || run.messages !== n) throw new Error(`${run.workers} worker(s): ${run.messages} messages for ${n} events, ${run.duplicates} duplicated`);
  }
  return { one, two, speedup: two.perSecond / one.perSecond, cores: availableParallelism(), load: loadavg()[0] ?? 0 };
}
