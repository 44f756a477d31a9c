import { z } from "zod";

/** Thresholds for readiness and the periodic checks behind /metrics. */
export const opsConfigSchema = z
  .object({
    /**
     * /readyz reports "degraded" when a job has waited longer than this for a worker: the
     * workers are down, stuck or too few for the load.
     */
    oldestWaitingDegradedSeconds: z.number().int().positive().default(300),
    /**
     * How often (at most) the Subscription status on the FHIR server is read, whatever the scrape
     * and probe rate: one search per interval per process keeps the FHIR server's load negligible.
     */
    subscriptionCheckSeconds: z.number().int().min(10).default(300),
    /**
     * A Subscription of ours still `requested` this long after it was last written is one the
     * server will not activate (Medplum never does): it delivers nothing, so it counts as unhealthy.
     */
    subscriptionActivationSeconds: z.number().int().min(1).default(120),
    /**
     * /readyz reports "degraded" when more sends than this have an unknown outcome (the request
     * may have reached Meta; no status webhook yet): timeouts or resets are piling up.
     */
    unknownOutcomesDegraded: z.number().int().min(0).default(20),
    /** Queue figures are cached this long, so probes and scrapes together cost a few Redis calls. */
    queueStatsCacheMs: z.number().int().min(0).default(2_000),
  })
  .strict();

