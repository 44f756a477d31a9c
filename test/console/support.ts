import { Hono } from "hono";
import { Redis } from "ioredis";
import pino from "pino";
import { onTestFinished } from "vitest";
import type { AppEnv } from "../../src/http/app-env.js";
import { errorHandler } from "../../src/http/errors.js";
import { createLedger } from "../../src/delivery/ledger.js";
import { createTimelineIndex, withTimelineIndex } from "../../src/delivery/timeline-index.js";
import { consoleRoute, type ConsoleDeps } from "../../src/console/console.route.js";
import { ownedRedisPrefix, testRedisUrl } from "../support/redis-prefix.js";

/** The console alone, mounted at /console as app.ts does, over a real Redis ledger and index. */
export function consoleWorld(overrides: Partial<ConsoleDeps> = {}) {
  const redis = new Redis(testRedisUrl, { enableAutoPipelining: true });
  onTestFinished(async () => {
    await redis.quit();
  });
  const prefix = ownedRedisPrefix(redis);
  const timeline = createTimelineIndex(redis, prefix);
  const ledger = withTimelineIndex(createLedger(redis, prefix), timeline);
  const deps: ConsoleDeps = {
    ledger,
    timeline,
    rules: [{ id: "appointment-booked", templateName: "appointment_confirmation_v1" }, { id: "appointment-reminder", templateName: "appointment_reminder_v1" }],
    sources: ["ehr"],
    adminToken: undefined,
    publicUrl: undefined,
    communicationUrl: (id) => `https://fhir.example.org/fhir/Communication/${id}`,
    ...overrides,
  };
  const app = new Hono<AppEnv>().route("/console", consoleRoute(deps));
  app.onError(errorHandler(pino({ level: "silent" })));
  return { app, ledger, timeline, redis, prefix };
}
