import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LoadResult } from "./load.js";

export interface WrkSpec {
  /** Loopback only: benchmarks never send traffic anywhere else. "{{n}}" is replaced by a per-request number. */
  url: string;
  method: string;
  headers: Record<string, string>;
  /** Body template; "{{n}}" as in the URL, so every request is distinct. */
  body: string;
  concurrency: number;
  /** How long wrk runs (whole seconds): the time bound. */
  seconds: number;
  /** Each wrk thread stops after its share of this many requests: the count bound (a safety net, set well above what the run can reach). */
  maxRequests: number;
}

/**
 * wrk from Debian, installed when missing (the bench machines are Debian; `apt-get install -y wrk`).
 * An external load generator in C costs a fraction of the CPU per request of a Node one, so it
 * shows what a server reaches when the load does not come from a process sharing its cores.
 */
export function ensureWrk(): void {
  if (spawnSync("wrk", ["--version"]).error === undefined) return;
  process.stderr.write("bench: wrk is not installed; running `apt-get install -y wrk`\n");
  const install = spawnSync("apt-get", ["install", "-y", "wrk"], { stdio: ["ignore", "ignore", "inherit"] });
  if (install.status !== 0 || spawnSync("wrk", ["--version"]).error !== undefined) {
    throw new Error("bench: wrk is missing and `apt-get install -y wrk` failed (needs root and the Debian archive); install wrk and run again");
  }
}

/** A Lua long string: no escaping to get wrong, whatever the text holds. */
function luaString(text: string): string {
  let level = 0;
  while (text.includes(`]${"=".repeat(level)}]`)) level++;
  const eq = "=".repeat(level);
  return `[${eq}[${text}]${eq}]`;
}

/*
 * wrk runs one Lua state per thread; setup() gives each a distinct number range so no two requests
 * share an id. done() prints one JSON line that runWrk() reads (latency in µs).
 */
function script(spec: WrkSpec, threads: number, path: string): string {
  const headers = Object.entries(spec.headers)
    .map(([k, v]) => `[ ${luaString(k)} ] = ${luaString(v)}`)
    .join(", ");
  return `
local index = 0
function setup(thread)
  thread:set("offset", index * 1000000000)
  index = index + 1
end
local method = ${luaString(spec.method)}
local path = ${luaString(path)}
local body = ${luaString(spec.body)}
local headers = { ${headers} }
local cap = ${Math.ceil(spec.maxRequests / threads)}
local n = 0
local seen = 0
function request()
  n = n + 1
  local s = tostring(offset + n)
  return wrk.format(method, (path:gsub("{{n}}", s)), headers, (body:gsub("{{n}}", s)))
end
function response()
  seen = seen + 1
  if seen >= cap then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\n{"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50Us":%d,"p99Us":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
`;
}

interface WrkSummary {
  requests: number;
  durationUs: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  p50Us: number;
  p99Us: number;
}

/** Run wrk against a loopback URL, bounded in time and count; the same figures as runLoad(). */
export async function runWrk(spec: WrkSpec): Promise<LoadResult> {
  const url = new URL(spec.url.replaceAll("{{n}}", "0"));
  if (url.hostname !== "127.0.0.1" && url.hostname !== "localhost" && url.hostname !== "[::1]") throw new Error("benchmarks only target loopback");
  ensureWrk();
  // One thread: on two cores the other one belongs to the server under test.
  const threads = 1;
  const base = `${url.protocol}//${url.host}`;
  const path = spec.url.slice(base.length);
  const dir = mkdtempSync(join(tmpdir(), "fn-wrk-"));
  try {
    const file = join(dir, "load.lua");
    writeFileSync(file, script(spec, threads, path));
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn("wrk", ["-t", String(threads), "-c", String(spec.concurrency), "-d", `${Math.max(1, Math.round(spec.seconds))}s`, "--timeout", "10s", "-s", file, base], { stdio: ["ignore", "pipe", "inherit"] });
      let text = "";
      child.stdout.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
      child.once("error", reject);
      child.once("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited with ${String(code)}`))));
    });
    const line = out.split("\n").find((l) => l.startsWith('{"requests"'));
    if (line === undefined) throw new Error("bench: wrk printed no summary");
    const s = JSON.parse(line) as WrkSummary;
    const failed = s.connect + s.read + s.write + s.status + s.timeout;
    const seconds = s.durationUs / 1e6;
    const ok = Math.max(0, s.requests - s.status);
    return { requests: s.requests, ok, failed, seconds, perSecond: ok / seconds, p50Ms: s.p50Us / 1000, p99Ms: s.p99Us / 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
