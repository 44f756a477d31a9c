import { randomUUID } from "node:crypto";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { Logger } from "pino";
import type { AppEnv } from "../app-env.js";

/**
 * The request's logger, made on first use: a child logger with a fresh request id, also sent back
 * as `x-request-id`. Most requests log nothing (an accepted notification logs at debug), and at
 * thousands a second a UUID, a child logger and a header each that nobody reads cost measurably.
 */
export function requestLog(c: Context<AppEnv>, root: Logger): Logger {
  let log = c.get("log");
  if (log === undefined) {
    // We do not trust an inbound id for correlation: a caller could reuse one to confuse the logs.
    const requestId = randomUUID();
    log = root.child({ requestId });
    c.set("log", log);
    c.header("x-request-id", requestId);
  }
  return log;
}

/** Routes ask for `c.var.requestLog()`; nothing is built for requests that never log. */
export const requestContext = (root: Logger) =>
  createMiddleware<AppEnv>(async (c, next) => {
    c.set("requestLog", () => requestLog(c, root));
    await next();
  });
