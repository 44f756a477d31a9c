import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { startEmbeddedRedis } from "../src/redis/embedded-redis.js";

export interface BenchRedis {
  url: string;
  /** True for a redis-server of our own: nothing else moves its memory or command counts. */
  isolated: boolean;
  stop(): Promise<void>;
}

/**
 * A dedicated redis-server on a free port in a temp dir (AOF on, like production), unless
 * BENCH_REDIS_URL names one: memory and command figures then include whatever else uses it.
 */
export async function benchRedis(): Promise<BenchRedis> {
  const configured = process.env.BENCH_REDIS_URL;
  if (configured !== undefined) return { url: configured, isolated: false, stop: () => Promise.resolve() };
  const dir = mkdtempSync(join(tmpdir(), "fn-bench-redis-"));
  const embedded = await startEmbeddedRedis(dir);
  return {
    url: embedded.url,
    isolated: true,
    stop: async () => {
      await embedded.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CommandCount {
  /** Commands clients sent (EVALSHA counts as one). */
  client: number;
  /** Commands run inside Lua scripts (BullMQ's and ours). */
  lua: number;
  /** Client commands by name, most frequent first. */
  byName: [string, number][];
}

/**
 * Counts every command Redis executes from now until stop(), through MONITOR (which tells a
 * client's commands from those a script runs). MONITOR slows Redis down, so timed runs never use
 * this. Commands from `exclude` connections (the bench's own polling) are left out.
 */
export async function startCommandCount(url: string, exclude: readonly Redis[]): Promise<{ read(): CommandCount; stop(): Promise<CommandCount> }> {
  const skip = new Set<string>();
  for (const r of exclude) skip.add(/addr=(\S+)/.exec(String(await r.call("CLIENT", "INFO")))?.[1] ?? "");
  // monitor() opens a connection of its own; the one it came from is closed with it.
  const origin = new Redis(url, { maxRetriesPerRequest: 1 });
  const monitor = await origin.monitor();
  let client = 0;
  let lua = 0;
  const names = new Map<string, number>();
  monitor.on("monitor", (_time: string, args: string[], source: string) => {
    if (source === "lua") lua++;
    else if (!skip.has(source)) {
      client++;
      const name = (args[0] ?? "").toLowerCase();
      names.set(name, (names.get(name) ?? 0) + 1);
    }
  });
  const read = (): CommandCount => ({ client, lua, byName: [...names].sort((a, b) => b[1] - a[1]) });
  return {
    read,
    async stop() {
      // MONITOR lines trail the replies a little.
      await new Promise((r) => setTimeout(r, 200));
      monitor.disconnect();
      await origin.quit();
      return read();
    },
  };
}
