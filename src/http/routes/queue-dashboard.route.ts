import type { Hono } from "hono";
import type { Logger } from "pino";
import type { Queue } from "bullmq";
import type { Queues } from "../../delivery/queues.js";

/*
 * Bull Board (https://github.com/felixmosh/bull-board) under /admin/queues, behind the admin auth
 * that app.ts puts on /admin/*. The packages are optional: they are loaded with a dynamic import
 * and, when they are not installed, the dashboard is simply absent (the service still starts).
 * Only the few members used here are typed, so the tree compiles without them.
 */

interface HonoAdapterLike {
  setBasePath(path: string): unknown;
  registerPlugin(): Hono;
}
interface BullBoardModules {
  createBullBoard(options: { queues: unknown[]; serverAdapter: HonoAdapterLike; options?: { uiConfig?: { boardTitle?: string } } }): unknown;
  BullMQAdapter: new (queue: Queue, options: { readOnlyMode: boolean; allowRetries: boolean }) => unknown;
  HonoAdapter: new (serveStatic: unknown) => HonoAdapterLike;
  serveStatic: unknown;
}

export interface QueueDashboardDeps {
  queues: Queues;
  /** Where app.ts mounts it; Bull Board builds its asset and API URLs from this. */
  basePath: string;
  /**
   * Read-only by default: retrying or deleting from the board would bypass the dead-letter
   * bookkeeping (`fhir-notify dlq replay` also resumes a halted sender and audits).
   */
  readOnly: boolean;
  log: Logger;
  /** Module loader; tests pass fakes. */
  load?: (specifier: string) => Promise<unknown>;
}

const load = (specifier: string): Promise<unknown> => import(specifier);

async function loadModules(loader: (specifier: string) => Promise<unknown>): Promise<BullBoardModules> {
  const [api, adapter, hono, statics] = (await Promise.all(
    ["@bull-board/api", "@bull-board/api/bullMQAdapter", "@bull-board/hono", "@hono/node-server/serve-static"].map((s) => loader(s)),
  )) as [Pick<BullBoardModules, "createBullBoard">, Pick<BullBoardModules, "BullMQAdapter">, Pick<BullBoardModules, "HonoAdapter">, Pick<BullBoardModules, "serveStatic">];
  return { createBullBoard: api.createBullBoard, BullMQAdapter: adapter.BullMQAdapter, HonoAdapter: hono.HonoAdapter, serveStatic: statics.serveStatic };
}

/** The dashboard as a Hono sub-app to mount at basePath, or undefined when Bull Board is not installed. */
export async function queueDashboardRoute(deps: QueueDashboardDeps): Promise<Hono | undefined> {
  let modules: BullBoardModules;
  try {
    modules = await loadModules(deps.load ?? load);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") throw err;
    deps.log.info("queue dashboard disabled: @bull-board/api and @bull-board/hono are not installed");
    return undefined;
  }
  const serverAdapter = new modules.HonoAdapter(modules.serveStatic);
  serverAdapter.setBasePath(deps.basePath);
  modules.createBullBoard({
    queues: Object.values(deps.queues.byName).map((q) => new modules.BullMQAdapter(q, { readOnlyMode: deps.readOnly, allowRetries: !deps.readOnly })),
    serverAdapter,
    options: { uiConfig: { boardTitle: "fhir-notify queues" } },
  });
  return serverAdapter.registerPlugin();
}
