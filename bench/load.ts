import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface LoadResult {
  requests: number;
  ok: number;
  failed: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

export interface LoadSpec {
  /** Loopback only: benchmarks never send traffic anywhere else. */
  url: string;
  method: string;
  headers: Record<string, string>;
  /** Body template; "{{n}}" is replaced by the request number so every request is distinct. */
  body: string;
  /** "{{n}}" in the URL too. */
  requests: number;
  concurrency: number;
  timeLimitMs: number;
}

/**
 * Fire `requests` HTTP requests with `concurrency` clients from a child process (its own event
 * loop and core, so the load generator does not starve the server), bounded in count and in time.
 * A child process rather than a worker thread: Node 20 does not apply `--import tsx` to workers.
 */
export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const host = new URL(spec.url.replace("{{n}}", "0")).hostname;
  if (host !== "127.0.0.1" && host !== "localhost" && host !== "[::1]") throw new Error("benchmarks only target loopback");
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL("./load-worker.ts", import.meta.url)), [], { execArgv: ["--import", "tsx"], stdio: "inherit" });
    let result: LoadResult | undefined;
    child.once("message", (m: LoadResult) => (result = m));
    child.once("error", reject);
    child.once("exit", (code) => (result !== undefined ? resolve(result) : reject(new Error(`load generator exited with ${String(code)}`))));
    child.send(spec);
  });
}

/**
 * A realistic HAPI-style rest-hook delivery body (PUT {endpoint}/Appointment/{id}), distinct per
 * request through "{{n}}" in the id and the patient reference.
 */
export function appointmentBodyTemplate(idPrefix: string): string {
  return JSON.stringify({
    resourceType: "Appointment",
    id: `${idPrefix}-{{n}}`,
    meta: { versionId: "1", lastUpdated: "2026-11-25T10:00:00Z" },
    status: "booked",
    serviceType: [{ text: "General practice" }],
    start: "2026-12-01T14:30:00Z",
    end: "2026-12-01T15:00:00Z",
    participant: [
      { actor: { reference: "Patient/p-{{n}}" }, status: "accepted" },
      { actor: { reference: "Location/loc-1" }, status: "accepted" },
    ],
  });
}
