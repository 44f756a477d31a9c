import { randomUUID } from "node:crypto";
import { createMiddleware } from "hono/factory";
import type { Logger } from "pino";
import type { AppEnv } from "../app-env.js";

export const requestContext = (root: Logger) =>
  createMiddleware<AppEnv>(async (c, next) => {
    // We do not trust an inbound id for correlation: a caller could reuse one to confuse the logs.
    const requestId = randomUUID();
    c.set("requestId", requestId);
    c.set("log", root.child({ requestId }));
    c.header("x-request-id", requestId);
    await next();
  });
