import { z } from "zod";
import { fhirClientConfigSchema } from "../fhir/fhir.config.js";
import { whatsappConfigSchema } from "../delivery/whatsapp/whatsapp.config.js";
import { sourceConfigSchema } from "../intake/source.config.js";
import { mappingConfigSchema } from "../mapping/mapping.config.js";
import { deliveryConfigSchema } from "../delivery/delivery.config.js";
import { auditConfigSchema } from "../audit/audit.config.js";
import { opsConfigSchema } from "../http/routes/ops.config.js";

const logLevel = z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

/** The queues a worker process can serve (the dead-letter queue has no worker: operators replay it). */
export const workerQueueNames = ["intake", "delivery", "audit", "webhook"] as const;
export type WorkerQueue = (typeof workerQueueNames)[number];

const workerQueues = z.preprocess(
  // WORKER_QUEUES=delivery,webhook from the environment; a list in the YAML file.
  (v) => (typeof v === "string" ? v.split(",").map((q) => q.trim()).filter((q) => q !== "") : v),
  z.array(z.enum(workerQueueNames)).min(1),
);

/**
 * The whole configuration: config/fhir-notify.yaml (optional) overlaid with environment variables.
 * Each slice is owned by the part of the pipeline that uses it; main.ts hands each part its slice.
 */
export const configSchema = z
  .object({
    http: z
      .object({
        port: z.coerce.number().int().min(0).max(65535).default(8080),
        host: z.string().min(1).default("127.0.0.1"),
        /** The URL FHIR servers and Meta use to reach us; defaults to http://<host>:<port>. */
        publicUrl: z.url().optional(),
        bodyLimitBytes: z.number().int().positive().default(1024 * 1024),
        /** Meta batches up to 1,000 updates and up to 3 MB per webhook POST. */
        webhookBodyLimitBytes: z.number().int().positive().default(3 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    redis: z
      .object({
        /** Unset: 127.0.0.1:6379 if it answers, else an embedded redis-server with AOF in dataDir. */
        url: z.string().regex(/^rediss?:\/\//, "must start with redis:// or rediss://").optional(),
        dataDir: z.string().default(".data/redis"),
        /** BullMQ key prefix; use a {hash-tag} such as "{fn}" on Redis Cluster. */
        prefix: z.string().regex(/^[^:\s]+$/, "must not contain ':' or spaces").default("fn"),
      })
      .strict()
      .prefault({}),
    /** Unset baseUrl: the embedded sandbox FHIR server under /sandbox/fhir. */
    fhir: fhirClientConfigSchema.optional(),
    whatsapp: whatsappConfigSchema.prefault({}),
    sources: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "source names are letters, digits, - and _"), sourceConfigSchema).default({}),
    mapping: mappingConfigSchema.prefault({}),
    delivery: deliveryConfigSchema.prefault({}),
    audit: auditConfigSchema.prefault({}),
    admin: z
      .object({
        /** Without a token the admin API answers only on loopback. */
        token: z.string().min(16).optional(),
      })
      .strict()
      .prefault({}),
    log: z.object({ level: logLevel.default("info") }).strict().prefault({}),
    /**
     * Which queues this process works on (role worker or all). Every queue needs at least one
     * process somewhere; splitting them lets, say, Communication write-back run (and back up
     * during a FHIR outage) apart from sending.
     */
    workers: z
      .object({ queues: workerQueues.default([...workerQueueNames]) })
      .strict()
      .prefault({}),
    ops: opsConfigSchema.prefault({}),
    shutdownGraceMs: z.number().int().positive().default(10_000),
  })
  .strict();

export type Config = z.output<typeof configSchema>;
