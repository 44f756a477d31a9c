import type { Logger } from "pino";

/** Per-request values only; long-lived dependencies arrive through route factories. */
export type AppEnv = { Variables: { requestId: string; log: Logger } };
