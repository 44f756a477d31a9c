import type { ErrorHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Logger } from "pino";
import { AppError, operationOutcome } from "../shared/app-error.js";
import type { AppEnv } from "./app-env.js";

function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof HTTPException) {
    if (err.status === 413) return new AppError("too-long", "request body is larger than the limit");
    if (err.status === 401) return new AppError("security", "not authenticated");
    if (err.status === 404) return new AppError("not-found", "not found");
    if (err.status >= 400 && err.status < 500) return new AppError("invalid", "bad request");
  }
  return new AppError("exception", "internal error");
}

export const errorHandler =
  (log: Logger): ErrorHandler<AppEnv> =>
  (err, c) => {
    const e = toAppError(err);
    if (e.status >= 500) (c.get("requestLog")?.() ?? log).error({ err }, "request failed");
    const outcome = operationOutcome("error", e.code, e.message, e.expression);
    return c.body(JSON.stringify(outcome), e.status, { "content-type": "application/fhir+json", ...e.headers });
  };
