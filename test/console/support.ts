import { Hono } from "hono";
import pino from "pino";
import type { AppEnv } from "../../src/http/app-env.js";
import { errorHandler } from "../../src/http/errors.js";
import { createLedger } from "../../src/delivery/ledger.js";
import { createDeadLetters } from "../../src/delivery/dead-letter.js";
import { createSenderState } from "../../src/delivery/sender-state.js";
import { createTemplateHolds } from "../../src/delivery/template-holds.js";
import { createTimelineIndex, withTimelineIndex } from "../../src/delivery/timeline-index.js";
import { createQueueHealth } from "../../src/http/routes/queue-health.js";
import { consoleRoute, type ConsoleDeps } from "../../src/console/console.route.js";
import { createMetrics } from "../../src/shared/metrics.js";
import { systemClock } from "../../src/shared/clock.js";
import { previewResource } from "../../src/delivery/preview.js";
import type { FhirResource } from "fhir/r4";
import { ownedQueues } from "../support/redis-prefix.js";
import { bookingTime, testFhir, testMapping } from "../mapping/site.js";

/** The console alone, mounted at /console as app.ts does, over a real Redis ledger, index and queues. */
export function consoleWorld(overrides: Partial<ConsoleDeps> = {}) {
  const { redis, prefix, queues } = ownedQueues();
  const log = pino({ level: "silent" });
  const metrics = createMetrics({ defaultMetrics: false });
  const timeline = createTimelineIndex(redis, prefix);
  const ledger = withTimelineIndex(createLedger(redis, prefix), timeline);
  const senderState = createSenderState(redis, prefix, queues.byName.delivery, log, metrics);
  const deadLetters = createDeadLetters({ queues, ledger, senderState, log });
  const templateHolds = createTemplateHolds(redis, prefix);
  const queueHealth = createQueueHealth({ queues, metrics, clock: systemClock, cacheMs: 0 });
  // Preview over the shipped rules and the fake FHIR server of the mapping tests (their site and clock).
  const fhir = testFhir();
  const mapping = testMapping();
  const deps: ConsoleDeps = {
    ledger,
    timeline,
    rules: [{ id: "appointment-booked", templateName: "appointment_confirmation_v1" }, { id: "appointment-reminder", templateName: "appointment_reminder_v1" }],
    sources: ["ehr"],
    adminToken: undefined,
    publicUrl: undefined,
    communicationUrl: (id) => `https://fhir.example.org/fhir/Communication/${id}`,
    deadLetters,
    senderState,
    queues: () => queueHealth.snapshot(),
    subscriptions: () => Promise.resolve([]),
    templates: [
      { templateName: "appointment_confirmation_v1", languageCode: "en_US" },
      { templateName: "appointment_confirmation_v1", languageCode: "es" },
    ],
    templateHolds,
    preview: (resource) => previewResource(mapping, resource, fhir, bookingTime),
    readResource: (type, id) => fhir.read(type as FhirResource["resourceType"], id),
    bodyLimitBytes: 64 * 1024,
    ...overrides,
  };
  const app = new Hono<AppEnv>().route("/console", consoleRoute(deps));
  app.onError(errorHandler(log));
  return { app, ledger, timeline, redis, prefix, queues, deadLetters, senderState, templateHolds, log, fhir };
}
