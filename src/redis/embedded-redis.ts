import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { join, resolve } from "node:path";
import { ConfigError } from "../shared/config-error.js";

export interface RedisTarget {
  url: string;
  /** How we got it, for the start-up banner. */
  origin: "configured" | "local" | "embedded";
  stop(): Promise<void>;
}

const localUrl = "redis://127.0.0.1:6379";

/**
 * REDIS_URL if set; else a Redis already answering on 127.0.0.1:6379; else a redis-server we start
 * ourselves on a free port with its data (AOF on) in dataDir, stopped with the service.
 */
export async function resolveRedis(configuredUrl: string | undefined, dataDir: string): Promise<RedisTarget> {
  if (configuredUrl !== undefined) return { url: configuredUrl, origin: "configured", stop: () => Promise.resolve() };
  if (await answersPing("127.0.0.1", 6379)) return { url: localUrl, origin: "local", stop: () => Promise.resolve() };
  return startEmbeddedRedis(dataDir);
}

/** Send a raw RESP PING and wait for +PONG (or an auth error, which still proves a Redis is there). */
export function answersPing(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((done) => {
    const socket = new Socket();
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once("error", () => finish(false));
    socket.once("data", (chunk) => finish(chunk.toString().startsWith("+PONG") || chunk.toString().startsWith("-NOAUTH")));
    socket.connect(port, host, () => socket.write("PING\r\n"));
  });
}

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

/** Which redis-server of ours owns the data dir: left behind only if we were killed (SIGKILL). */
const ownerFile = "fhir-notify-redis.json";

export async function startEmbeddedRedis(dataDir: string): Promise<RedisTarget> {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  // Two servers must never share one AOF directory: stop one a killed run left behind first.
  await stopLeftover(dir);
  const port = await freePort();
  let child: ChildProcess;
  try {
    child = await spawnRedis(dir, port);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new ConfigError(
        "redis: no Redis answers on 127.0.0.1:6379 and redis-server is not on PATH; install it (apt-get install redis-server) or set REDIS_URL",
      );
    }
    throw err;
  }
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (await answersPing("127.0.0.1", port, 200)) {
      writeFileSync(join(dir, ownerFile), JSON.stringify({ pid: child.pid, port }));
      return {
        url,
        origin: "embedded",
        stop: async () => {
          await stopChild(child);
          rmSync(join(dir, ownerFile), { force: true });
        },
      };
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await stopChild(child);
  throw new ConfigError(`redis: the embedded redis-server did not start on port ${port} (data dir ${dataDir})`);
}

/** A redis-server recorded in the data dir that still answers on its port is ours: stop it (it flushes its AOF on SIGTERM). */
async function stopLeftover(dir: string): Promise<void> {
  let owner: { pid?: unknown; port?: unknown };
  try {
    owner = JSON.parse(readFileSync(join(dir, ownerFile), "utf8")) as { pid?: unknown; port?: unknown };
  } catch {
    return;
  }
  const { pid, port } = owner;
  if (typeof pid === "number" && typeof port === "number" && (await answersPing("127.0.0.1", port, 200))) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // Gone meanwhile, or not ours to signal: the port check below decides.
    }
    for (let i = 0; i < 100 && (await answersPing("127.0.0.1", port, 200)); i++) await new Promise((r) => setTimeout(r, 50));
  }
  rmSync(join(dir, ownerFile), { force: true });
}

function spawnRedis(dir: string, port: number): Promise<ChildProcess> {
  return new Promise((done, fail) => {
    const child = spawn(
      "redis-server",
      // AOF on: queued notifications and delayed reminders must survive a restart.
      ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--save", "", "--maxmemory-policy", "noeviction"],
      // Its own process group: Ctrl-C in a terminal signals the whole foreground group, and Redis
      // must outlive the service's drain (workers still write to it); the service stops it last.
      { stdio: "ignore", detached: true },
    );
    child.once("error", fail);
    child.once("spawn", () => done(child));
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
    child.once("exit", () => {
      clearTimeout(timer);
      done();
    });
    child.kill("SIGTERM");
  });
}
