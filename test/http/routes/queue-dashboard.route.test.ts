import { describe, expect, it } from "vitest";
import { Hono } from "hono";
import type { Queue } from "bullmq";
import type { Queues } from "../../../src/delivery/queues.js";
import { queueDashboardRoute } from "../../../src/http/routes/queue-dashboard.route.js";
import { captureLogs } from "../../support/log-capture.js";

const queues = { byName: { intake: { name: "intake" }, delivery: { name: "delivery" } } } as unknown as Queues;

function notInstalled(specifier: string): Promise<unknown> {
  return Promise.reject(Object.assign(new Error(`Cannot find package '${specifier}'`), { code: "ERR_MODULE_NOT_FOUND" }));
}

describe("the queue dashboard", () => {
  it("is absent, and says so once in the log, when Bull Board is not installed", async () => {
    const logs = captureLogs("info");
    const route = await queueDashboardRoute({ queues, basePath: "/admin/queues", readOnly: true, log: logs.log, load: notInstalled });
    expect(route).toBeUndefined();
    expect(logs.text()).toContain("queue dashboard disabled");
  });

  it("shows every queue read-only under the base path when Bull Board is installed", async () => {
    const seen: { basePath?: string; adapters: { queue: string; readOnlyMode: boolean }[] } = { adapters: [] };
    const plugin = new Hono().get("/", (c) => c.text("board"));
    const modules: Record<string, unknown> = {
      "@bull-board/api": {
        createBullBoard: (o: { queues: { queue: string; readOnlyMode: boolean }[] }) => seen.adapters.push(...o.queues),
      },
      "@bull-board/api/bullMQAdapter": {
        BullMQAdapter: class {
          queue: string;
          readOnlyMode: boolean;
          constructor(q: Queue, o: { readOnlyMode: boolean }) {
            this.queue = q.name;
            this.readOnlyMode = o.readOnlyMode;
          }
        },
      },
      "@bull-board/hono": {
        HonoAdapter: class {
          setBasePath(p: string) {
            seen.basePath = p;
          }
          registerPlugin() {
            return plugin;
          }
        },
      },
      "@hono/node-server/serve-static": { serveStatic: () => undefined },
    };
    const route = await queueDashboardRoute({ queues, basePath: "/admin/queues", readOnly: true, log: captureLogs().log, load: (s) => Promise.resolve(modules[s]) });
    expect(route).toBe(plugin);
    expect(seen.basePath).toBe("/admin/queues");
    expect(seen.adapters).toEqual([
      { queue: "intake", readOnlyMode: true },
      { queue: "delivery", readOnlyMode: true },
    ]);
  });

  it("lets any other loading error through", async () => {
    const broken = () => Promise.reject(new SyntaxError("Unexpected token"));
    await expect(queueDashboardRoute({ queues, basePath: "/admin/queues", readOnly: true, log: captureLogs().log, load: broken })).rejects.toThrow(SyntaxError);
  });
});
