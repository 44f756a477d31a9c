import { Redis } from "ioredis";
import { describe, expect, it, onTestFinished } from "vitest";
import { createTimelineIndex } from "../../src/delivery/timeline-index.js";
import { consoleWorld } from "./support.js";

describe("the console when Redis does not answer", () => {
  it("answers a page in fixed words, not an OperationOutcome", async () => {
    // A real client on a port where no Redis listens: every command fails at once.
    const down = new Redis("redis://127.0.0.1:1", { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    down.on("error", () => undefined);
    onTestFinished(() => down.disconnect());
    const { app } = consoleWorld({ timeline: createTimelineIndex(down, "unused") });

    const res = await app.request("/console");
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    const html = await res.text();
    expect(html).toContain("could not read its data just now");
    expect(html).not.toContain("OperationOutcome");
  });
});
