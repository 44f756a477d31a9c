import { defineConfig } from "vitest/config";

// Tests share one machine with Redis and HTTP servers on loopback; keep the pool
// small so a 2-core CI box is not oversubscribed, and give Redis-backed tests room.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 20_000,
    hookTimeout: 30_000,
    restoreMocks: true,
  },
});
