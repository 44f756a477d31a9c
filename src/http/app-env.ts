import type { Logger } from "pino";

/**
 * Per-request values only; long-lived dependencies arrive through route factories. `log` is set
 * once `requestLog()` was first called (request-context.middleware.ts).
 */
export type AppEnv = { Variables: { requestLog: () => Logger; log?: Logger } };
