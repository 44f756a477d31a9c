import { randomBytes } from "node:crypto";
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import type { Hono } from "hono";
import type { FhirResource } from "fhir/r4";
import type { Logger } from "pino";
import { serve, type ServerType } from "@hono/node-server";
import type { Config, WorkerQueue } from "./config/config.schema.js";
import { queueDashboardRoute } from "./http/routes/queue-dashboard.route.js";
import { buildApp, buildOpsApp, mountApart } from "./http/app.js";
import { createQueueHealth } from "./http/routes/queue-health.js";
import { createSubscriptionHealth } from "./http/routes/subscription-health.js";
import type { AppEnv } from "./http/app-env.js";
import { resolveRedis, freePort, type RedisTarget } from "./redis/embedded-redis.js";
import { createFhirClient, type FhirClient } from "./fhir/fhir.client.js";
import type { FhirPort } from "./fhir/fhir.port.js";
import { createSandboxFhir, type SandboxFhir } from "./sandbox/sandbox-fhir.js";
import { createQueues, type Queues } from "./delivery/queues.js";
import { createLedger } from "./delivery/ledger.js";
import { createUnknownOutcomes } from "./delivery/unknown-outcomes.js";
import { createScheduler } from "./delivery/schedule.js";
import { processorsFor, type JobHandlers } from "./delivery/job-handlers.js";
import { sendMessage } from "./delivery/send.worker.js";
import { createOptOutStore } from "./delivery/opt-out.js";
import { createSenderState } from "./delivery/sender-state.js";
import { createRateLimiter } from "./delivery/rate-limit.js";
import { createTemplateHolds } from "./delivery/template-holds.js";
import { createMessagingBudget } from "./delivery/messaging-budget.js";
import { createTemplateGovernance } from "./delivery/template-governance.js";
import { createTimelineIndex, withTimelineIndex } from "./delivery/timeline-index.js";
import { sandboxExample } from "./console/example.js";
import { createStatusUpdates } from "./delivery/status-updates.js";
import { createDeadLetters } from "./delivery/dead-letter.js";
import { createWebhookIntake } from "./delivery/webhook-intake.js";
import { endedByReplyIndex, handleInbound } from "./audit/replies.worker.js";
import { checkExpiry, sweepExpired } from "./delivery/expiry.js";
import { createCloudApiClient } from "./delivery/whatsapp/cloud-api.client.js";
import { createCallbackTokens } from "./delivery/whatsapp/callback-tokens.js";
import { createDryRunOutbox } from "./delivery/whatsapp/dry-run.outbox.js";
import { liveCredentials } from "./delivery/whatsapp/whatsapp.config.js";
import type { WhatsAppSender } from "./delivery/whatsapp/whatsapp.port.js";
import { writeCommunication } from "./audit/write-communication.worker.js";
import { createDeliveryLocks } from "./audit/delivery-lock.js";
import { createIntake } from "./intake/accept.js";
import { checkHeartbeats, heartbeatCheckEveryMs } from "./intake/heartbeat-check.js";
import { processEvent } from "./intake/process-event.worker.js";
import { createResourceStateStore } from "./intake/resource-state.js";
import { createGapTracker } from "./intake/gap-tracker.js";
import { createPoller } from "./intake/poll.js";
import { createWatermarks } from "./intake/watermark.js";
import { createRecovery } from "./intake/recover.js";
import { catchUpWorker } from "./intake/catch-up.worker.js";
import { desiredSubscriptions, listSubscriptions, syncSubscriptions } from "./intake/subscriptions.js";
import { sourceConfigSchema, type SourceConfig } from "./intake/source.config.js";
import { loadSiteMapping, type Mapping } from "./mapping/mapping.js";
import { previewResource } from "./delivery/preview.js";
import type { Clock } from "./shared/clock.js";
import { createMetrics, type Metrics } from "./shared/metrics.js";
import { runSteps, type Step } from "./shared/lifecycle.js";
import { fhirServerId } from "./shared/ids.js";
import { ConfigError } from "./shared/config-error.js";
import { redisDurabilityWarnings } from "./config/redis-durability.js";

export type Role = "api" | "worker" | "all";

export interface ServiceOptions {
  config: Config;
  log: Logger;
  clock: Clock;
  role?: Role;
  /** Tests inject a fake or msw-backed sender. */
  sender?: WhatsAppSender;
  /** Tests inject their own FHIR port; otherwise the HTTP client (or the sandbox). */
  fhir?: FhirPort;
  metrics?: Metrics;
  /** Dry-run status delay; tests shorten it. */
  outboxStatusDelayMs?: number;
  /** Crash tests shorten how soon another worker takes over the jobs of a killed one (BullMQ: 30 s). */
  workerLocks?: { lockDurationMs: number; stalledIntervalMs: number };
}

export interface RunningService {
  url: string;
  app: Hono<AppEnv>;
  queues: Queues;
  redis: Redis;
  redisTarget: RedisTarget;
  fhir: FhirPort;
  fhirBaseUrl: string;
  mapping: Mapping;
  metrics: Metrics;
  sandbox?: SandboxFhir;
  sandboxSeed?: Awaited<ReturnType<SandboxFhir["seed"]>>;
  outbox?: ReturnType<typeof createDryRunOutbox>;
  sources: Record<string, SourceConfig>;
  embedded: { redis: RedisTarget["origin"]; fhir: "sandbox" | "external"; whatsapp: "dry-run" | "cloud-api" };
  /** Stop in order: HTTP, workers, queues, Redis (house style rule 15). */
  stop(): Promise<void>;
}

const concurrency: Record<WorkerQueue, number> = { intake: 16, delivery: 32, audit: 16, webhook: 16 };

/**
 * Everything the process runs, built from config. main.ts adds signals and the banner; tests and
 * benchmarks call this directly, so they run the same graph as production.
 */
export async function startService(options: ServiceOptions): Promise<RunningService> {
  const { config, log, clock } = options;
  const role = options.role ?? "all";
  const metrics = options.metrics ?? createMetrics();
  // Stop order (house style rule 15): stop accepting HTTP, drain workers, close queues, quit Redis.
  const stopOrder = ["http", "workers", "outbox", "sandbox", "queues", "redis-producer", "redis", "redis-server"] as const;
  const stops: Partial<Record<(typeof stopOrder)[number], () => Promise<unknown>>> = {};
  let stopped: Promise<void> | undefined;
  const stopAll = () =>
    (stopped ??= runSteps(
      log,
      stopOrder.flatMap((name): Step[] => (stops[name] !== undefined ? [[name, stops[name]]] : [])),
    ));

  try {
    const redisTarget = await resolveRedis(config.redis.url, config.redis.dataDir);
    stops["redis-server"] = () => redisTarget.stop();
    const prefix = config.redis.prefix;

    // Workers block on Redis and must retry forever; producers must fail fast so intake can answer 503.
    // Auto-pipelining batches the many small ledger/limiter commands of concurrent jobs into one write.
    const redis = new Redis(redisTarget.url, { maxRetriesPerRequest: 3, lazyConnect: true, enableAutoPipelining: true });
    // Connection errors are expected while Redis restarts; ioredis reconnects on its own.
    let connectError: NodeJS.ErrnoException | undefined;
    redis.on("error", (err: Error) => {
      connectError ??= err;
      log.warn({ err: { message: err.message } }, "redis connection error");
    });
    await redis.connect().catch((err: unknown) => {
      const cause = connectError ?? (err as NodeJS.ErrnoException);
      // The URL may carry a password: name host and port only.
      const { hostname, port } = new URL(redisTarget.url);
      redis.disconnect();
      throw new ConfigError(`redis: cannot connect to ${hostname}:${port || "6379"} (${cause.code ?? cause.message}); is it running? check REDIS_URL`);
    });
    const redisWarnings = await redisDurabilityWarnings(redis);
    for (const warning of redisWarnings) log.warn({ event: "redis-not-durable" }, warning);
    stops["redis"] = () => redis.quit();
    const producer = new Redis(redisTarget.url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true, enableAutoPipelining: true });
    producer.on("error", (err: Error) => log.warn({ err: { message: err.message } }, "redis producer connection error"));
    await producer.connect();
    stops["redis-producer"] = () => producer.quit();

    const port = config.http.port === 0 ? await freePort() : config.http.port;
    const localHost = config.http.host === "0.0.0.0" || config.http.host === "::" ? "127.0.0.1" : config.http.host;
    const url = config.http.publicUrl ?? `http://${localHost}:${port}`;

    // FHIR: the configured server, or the embedded sandbox reached over our own HTTP port.
    let sandbox: SandboxFhir | undefined;
    let fhirBaseUrl: string;
    let fhirClient: FhirClient | undefined;
    if (config.fhir === undefined) {
      fhirBaseUrl = `${url}/sandbox/fhir`;
      sandbox = createSandboxFhir({ publicBaseUrl: fhirBaseUrl, log });
      stops["sandbox"] = () => sandbox!.close();
    } else fhirBaseUrl = config.fhir.baseUrl;
    const mappingConfig = structuredClone(config.mapping);
    let sandboxSeed: RunningService["sandboxSeed"];
    if (sandbox !== undefined) {
      sandboxSeed = await sandbox.seed();
      // The demo clinic's public wording, as a hospital would configure it for its own Locations.
      mappingConfig.locations[`Location/${sandboxSeed.locationId}`] ??= { label: "Riverside Clinic", timeZone: "America/New_York" };
      mappingConfig.organization.reference ??= `Organization/${sandboxSeed.organizationId}`;
      if (mappingConfig.organization.displayName === "the clinic") mappingConfig.organization.displayName = "Riverside Health";
      mappingConfig.organization.phone ??= "+1 555-555-0100";
    }
    const onCall = (info: { op: string; ms: number }) => metrics.outboundLatency.observe({ peer: "fhir", op: info.op }, info.ms / 1000);
    if (options.fhir === undefined) {
      fhirClient = createFhirClient(config.fhir ?? { baseUrl: fhirBaseUrl, timeoutMs: 10_000, retries: 3, auth: { type: "none" } }, log, { onCall });
    }
    const fhir: FhirPort = options.fhir ?? fhirClient!;

    // Sources: with the sandbox and nothing configured, one "sandbox" source with a fresh secret.
    const sources: Record<string, SourceConfig> = { ...config.sources };
    let sandboxSecret: string | undefined;
    if (Object.keys(sources).length === 0) {
      if (sandbox !== undefined) {
        sandboxSecret = randomBytes(24).toString("base64url");
        sources.sandbox = sourceConfigSchema.parse({ auth: { type: "bearer", token: sandboxSecret }, subscription: { style: "r4-rest-hook", payload: "full-resource" } });
      } else sources.default = sourceConfigSchema.parse({ auth: { type: "none" } });
    }

    const mapping = loadSiteMapping(mappingConfig, clock);
    log.info({ event: "config-loaded", rulesHash: mapping.rulesHash, rules: mapping.rules.map((r) => r.id), sources: Object.keys(sources), role, ...(role !== "api" ? { workerQueues: config.workers.queues } : {}) }, "configuration loaded");

    const queues = createQueues(producer, {
      prefix,
      keepCompletedSeconds: config.delivery.keepCompletedJobsHours * 3600,
      keepFinishedSendJobsSeconds: config.delivery.keepFinishedSendJobsMinutes * 60,
      retries: { "send-message": config.delivery.retries },
      onError: (queue, err) => log.warn({ queue, err: { message: err.message } }, "queue connection error"),
    });
    stops["queues"] = () => queues.close();
    const retentionSeconds = config.delivery.ledgerRetentionDays * 86_400;
    // The console's timeline index is written beside every ledger write (timeline-index.ts).
    const timeline = createTimelineIndex(redis, prefix, retentionSeconds);
    const ledger = withTimelineIndex(createLedger(redis, prefix, retentionSeconds), timeline);
    const optOuts = createOptOutStore(redis, prefix);
    const senderState = createSenderState(redis, prefix, queues.byName.delivery, log, metrics);
    const templateHolds = createTemplateHolds(redis, prefix);
    const unknownOutcomes = createUnknownOutcomes(redis, prefix);
    const callbackTokens = createCallbackTokens(redis, prefix, retentionSeconds);
    const statusUpdates = createStatusUpdates({ ledger, queues, unknownOutcomes, callbackTokens, log, metrics, identities: optOuts });
    const deadLetters = createDeadLetters({ queues, ledger, senderState, log });
    const gaps = createGapTracker(redis, prefix);
    const marks = createWatermarks(redis, prefix);
    const intake = createIntake({ sources, queues, gaps, marks, metrics, log });
    // Before HTTP accepts anything: what the FHIR server gave up on while we were down is found from
    // the marks as they are now, before new pushes move them (intake/accept.ts).
    if (role !== "worker") for (const name of Object.keys(config.sources)) await intake.resume(name, "start", clock.now().toISOString());

    // WhatsApp: the Cloud API when credentials are set, else the dry-run outbox. Its synthetic
    // statuses are applied in order, in process, through the same ledger code as webhook statuses
    // (not queued: they are a demo aid, and losing one in a Redis outage loses no message).
    const live = liveCredentials(config.whatsapp);
    let outbox: ReturnType<typeof createDryRunOutbox> | undefined;
    let sender: WhatsAppSender;
    if (options.sender !== undefined) sender = options.sender;
    else if (live !== undefined) sender = createCloudApiClient(live, log); // binds component itself
    else {
      outbox = createDryRunOutbox({
        clock,
        log,
        statusDelayMs: options.outboxStatusDelayMs ?? 200,
        onStatus: async (u) => {
          await statusUpdates.apply({ wamid: u.wamid, status: u.status, timestamp: u.timestamp, ...(u.callbackData !== undefined ? { callbackData: u.callbackData } : {}) });
        },
      });
      sender = outbox;
      stops["outbox"] = () => Promise.resolve(outbox!.close());
    }

    const governance = createTemplateGovernance({ holds: templateHolds, knownTemplates: new Set(mapping.rules.flatMap((r) => (r.message !== undefined ? [r.message.template.name] : []))), metrics, log });
    const webhook = createWebhookIntake({ queues, metrics, appSecret: config.whatsapp.appSecret, phoneNumberId: config.whatsapp.phoneNumberId, keywords: config.whatsapp.keywords, governance });

    const queueHealth = createQueueHealth({ queues, metrics, clock, cacheMs: config.ops.queueStatsCacheMs });
    const subscriptionHealth = createSubscriptionHealth({
      list: (options) => listSubscriptions(fhir, options),
      sources,
      metrics,
      log,
      refreshMs: config.ops.subscriptionCheckSeconds * 1000,
      activationGraceMs: config.ops.subscriptionActivationSeconds * 1000,
      now: () => clock.now(),
    });
    const probe = {
      redis: async () => (await redis.ping()) === "PONG",
      fhir: () => (fhirClient !== undefined ? fhirClient.checkReachable() : Promise.resolve(true)),
      warnings: () => redisWarnings,
      degradations: async () => {
        const reasons: string[] = [];
        const halted = await senderState.status();
        if (halted.halted) reasons.push(`whatsapp sender halted (code ${String(halted.code ?? "none")})`);
        reasons.push(...(await queueHealth.degradations(config.ops.oldestWaitingDegradedSeconds)));
        reasons.push(...(await subscriptionHealth.degradations()));
        const unknown = await unknownOutcomes.pending();
        if (unknown > config.ops.unknownOutcomesDegraded) reasons.push(`${unknown} send(s) with an unknown outcome (limit ${config.ops.unknownOutcomesDegraded})`);
        return reasons;
      },
    };
    const refreshGauges = async () => {
      // Halts are set by whichever process saw the error; every process reports the shared state.
      metrics.senderPaused.set((await senderState.status()).halted ? 1 : 0);
      metrics.unknownOutcomesPending.set(await unknownOutcomes.pending());
      await Promise.all([queueHealth.snapshot(), subscriptionHealth.check()]);
    };

    const app = buildApp({
      log,
      clock,
      metrics,
      intake,
      webhook,
      verifyToken: config.whatsapp.verifyToken,
      adminToken: config.admin.token,
      bodyLimitBytes: config.http.bodyLimitBytes,
      webhookBodyLimitBytes: config.http.webhookBodyLimitBytes,
      ...(sandbox !== undefined ? { sandbox: sandbox.app } : {}),
      admin: {
        ledger,
        deadLetters,
        senderState,
        unknownOutcomes,
        outbox,
        preview: (resource) => previewResource(mapping, resource, fhir, clock.now()),
        communicationUrl: (id) => `${fhirBaseUrl}/Communication/${id}`,
      },
      console: {
        ledger,
        timeline,
        rules: mapping.rules.map((r) => ({ id: r.id, ...(r.message !== undefined ? { templateName: r.message.template.name } : {}) })),
        sources: Object.keys(sources),
        adminToken: config.admin.token,
        publicUrl: config.http.publicUrl,
        communicationUrl: (id) => `${fhirBaseUrl}/Communication/${id}`,
        deadLetters,
        senderState,
        queues: () => queueHealth.snapshot(),
        subscriptions: () => listSubscriptions(fhir, { now: clock.now(), activationGraceMs: config.ops.subscriptionActivationSeconds * 1000 }),
        // Each template the rules name, once, in every language it has.
        templates: [...new Map(mapping.rules.flatMap((r) => (r.message !== undefined ? [[r.message.template.name, r.message.template] as const] : []))).values()].flatMap(
          (t) => [...t.languages.keys()].map((languageCode) => ({ templateName: t.name, languageCode })),
        ),
        templateHolds,
        preview: (resource) => previewResource(mapping, resource, fhir, clock.now()),
        readResource: (type, id) => fhir.read(type as FhirResource["resourceType"], id),
        ...(sandboxSeed !== undefined ? { example: () => sandboxExample(sandboxSeed, clock.now()) } : {}),
        bodyLimitBytes: config.http.bodyLimitBytes,
      },
      probe,
      refreshGauges,
    });
    // Records written before the timeline index existed: indexed once, in the background.
    timeline.backfill(ledger).then(
      (added) => {
        if (added > 0) log.info({ event: "timeline-backfilled", added }, "indexed earlier notifications for the console timeline");
      },
      (err: Error) => log.warn({ err: { message: err.message } }, "could not index earlier notifications for the console timeline"),
    );
    // Bull Board under /admin/queues, behind the same admin auth as the rest of /admin/*.
    const board = await queueDashboardRoute({ queues, basePath: "/admin/queues", readOnly: true, log });
    if (board !== undefined) mountApart(app, "/admin/queues", board, log);

    // A worker-only process still serves /healthz, /readyz and its own /metrics (nothing that accepts work).
    const opsOnly = role === "worker" && sandbox === undefined;
    const served = opsOnly ? buildOpsApp({ log, metrics, probe, refreshGauges }) : app;
    const server = await new Promise<ServerType | undefined>((done, fail) => {
      const s = serve({ fetch: served.fetch, port, hostname: config.http.host }, () => done(s));
      s.once("error", (err: NodeJS.ErrnoException) => {
        // Several worker processes on one host with one PORT: the work matters more than its metrics.
        if (opsOnly && err.code === "EADDRINUSE") {
          log.warn({ port }, "port in use: this worker runs without /metrics and /readyz (give each worker process its own PORT)");
          done(undefined);
        } else fail(err);
      });
    });
    // First step to stop: no new requests while workers drain.
    if (server !== undefined) stops["http"] = () => new Promise<void>((done) => server.close(() => done()));

    if (sandbox !== undefined) {
      if (sandboxSecret !== undefined && sources.sandbox !== undefined) {
        const desired = desiredSubscriptions("sandbox", sources.sandbox, `${url}/hooks/fhir/sandbox`, `Authorization: Bearer ${sandboxSecret}`);
        await syncSubscriptions(fhir, desired);
      }
    }

    if (role !== "api") {
      const workerConnection = { url: redisTarget.url, maxRetriesPerRequest: null };
      // Every source reads the one configured FHIR server, so every channel shares its key.
      const fhirServer = fhirServerId(fhirBaseUrl);
      const scheduler = createScheduler({ queues, ledger, clock, log, metrics, rulesHash: mapping.rulesHash, dryRun: outbox !== undefined });
      const poller = createPoller({ fhir, baseUrl: fhirBaseUrl, redis, prefix, log });
      const recovery = createRecovery({ baseUrl: fhirBaseUrl, fetchBundle: (u) => fhir.fetchPage(u), poller, log });
      const catchUp = catchUpWorker({ sources, poller, recovery, intake, log });
      const heartbeats = checkHeartbeats({ sources, gaps, marks, queues, clock, log, metrics });
      const expiryDeps = { ledger, queues, clock, log, metrics };
      const expireOne = checkExpiry(expiryDeps);
      const sweep = sweepExpired(expiryDeps);
      const inbound = handleInbound({
        fhir,
        ledger,
        optOuts,
        audit: config.audit,
        organizationRef: mappingConfig.organization.reference,
        consent: mappingConfig.consent,
        endedByReply: endedByReplyIndex(mapping.rules),
        scheduler,
        log,
      });
      const handlers: JobHandlers = {
        "process-event": processEvent({ fhir, mapping, scheduler, ledger, state: createResourceStateStore(redis, prefix), marks, clock, log, metrics, serverOf: () => fhirServer }),
        "catch-up": catchUp,
        "check-heartbeats": () => heartbeats(),
        "send-message": sendMessage({
          fhir,
          mapping,
          ledger,
          queues,
          sender,
          callbackTokens,
          senderId: config.whatsapp.phoneNumberId ?? "dry-run",
          senderState,
          optOuts,
          rateLimiter: createRateLimiter(redis, prefix, config.delivery.rateLimits, clock),
          templateHolds,
          ...(config.delivery.messagingBudget.uniqueRecipientsPer24h !== undefined
            ? {
                messagingBudget: createMessagingBudget(
                  redis,
                  prefix,
                  {
                    uniqueRecipientsPer24h: config.delivery.messagingBudget.uniqueRecipientsPer24h,
                    alertAtRatio: config.delivery.messagingBudget.alertAtRatio,
                    onAlert: (used, limit) => {
                      metrics.messagingBudgetAlerts.inc();
                      log.warn({ event: "messaging-budget-alert", used, limit }, "unique-recipient budget nearly used up for this 24 h window");
                    },
                  },
                  clock,
                ),
              }
            : {}),
          quietHours: config.delivery.quietHours,
          reminderNotAfter: config.delivery.reminderNotAfter,
          unknownOutcomeWindowMs: config.delivery.unknownOutcomeWindowMinutes * 60_000,
          unknownOutcomes,
          expiryBufferMinutes: config.delivery.expiryBufferMinutes,
          replayParked: (parked) => statusUpdates.replayParked(parked),
          clock,
          log,
          metrics,
        }),
        "write-communication": writeCommunication({
          fhir,
          ledger,
          options: config.audit,
          log,
          metrics,
          locks: createDeliveryLocks(redis, prefix, { onRenewFailure: (deliveryId, reason) => log.warn({ deliveryId, reason }, "could not renew a delivery's audit lock") }),
        }),
        "apply-statuses": (job) => statusUpdates.worker(job),
        "apply-status": (job) => statusUpdates.worker(job),
        "sweep-expiry": () => sweep(),
        "check-expiry": expireOne,
        "inbound-message": inbound,
      };
      const processors = processorsFor(handlers);
      const served = config.workers.queues;
      const workers = served.map((queue) => {
        const worker = new Worker(queue, processors[queue], {
          connection: workerConnection,
          prefix,
          concurrency: concurrency[queue],
          ...(options.workerLocks !== undefined ? { lockDuration: options.workerLocks.lockDurationMs, stalledInterval: options.workerLocks.stalledIntervalMs } : {}),
        });
        worker.on("failed", (job, err) => {
          // Error messages are ours (adapters keep PHI out of them); the stack shows where.
          // `name` is redacted (it can be a person's name elsewhere), so the job's name is logged as jobName.
          log.warn({ queue, jobId: job?.id, jobName: job?.name, attemptsMade: job?.attemptsMade, err }, "job attempt failed");
          void deadLetters.onFailed(queue, job, err).catch((e: unknown) => log.error({ err: e }, "dead-letter bookkeeping failed"));
        });
        worker.on("error", (err) => log.error({ err, queue }, "worker error"));
        return worker;
      });
      // Workers close before queues and Redis: close() waits for active jobs to finish.
      stops["workers"] = () => Promise.all(workers.map((w) => w.close()));

      // One scheduler across all worker processes (BullMQ keeps one per id): upserting is idempotent.
      if (served.includes("webhook")) await queues.schedule("sweep-expiry", "sweep-expiry", 60_000, {});
      const heartbeatEvery = heartbeatCheckEveryMs(sources);
      if (served.includes("intake")) {
        // Schedulers outlive restarts in Redis: drop this one when no source has heartbeats any more.
        if (heartbeatEvery !== undefined) await queues.schedule("check-heartbeats", "check-heartbeats", heartbeatEvery, {});
        else await queues.byName.intake.removeJobScheduler("check-heartbeats");
      }
      for (const [name, cfg] of Object.entries(sources)) {
        if (cfg.mode !== "poll" || !served.includes("intake")) continue;
        await queues.schedule(`poll-${name}`, "catch-up", cfg.pollIntervalSeconds * 1000, { source: name, reason: "poll", receivedAt: clock.now().toISOString() });
      }
    }

    const running: RunningService = {
      url,
      app,
      queues,
      redis,
      redisTarget,
      fhir,
      fhirBaseUrl,
      mapping,
      metrics,
      sources,
      embedded: { redis: redisTarget.origin, fhir: sandbox !== undefined ? "sandbox" : "external", whatsapp: outbox !== undefined ? "dry-run" : "cloud-api" },
      stop: stopAll,
      ...(sandbox !== undefined ? { sandbox } : {}),
      ...(sandboxSeed !== undefined ? { sandboxSeed } : {}),
      ...(outbox !== undefined ? { outbox } : {}),
    };
    return running;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
