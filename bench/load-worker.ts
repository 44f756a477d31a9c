import { Agent, request } from "node:http";
import type { LoadResult, LoadSpec } from "./load.js";

/**
 * One request on a keep-alive socket; resolves with the status once the response is read.
 * node:http rather than fetch: the load generator shares the machine's two cores with the server
 * under test, and undici's fetch costs several times more CPU per request than a plain request.
 */
function send(agent: Agent, url: URL, method: string, headers: Record<string, string>, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers: { ...headers, "content-length": String(Buffer.byteLength(body)) } }, (res) => {
      res.resume();
      res.once("end", () => resolve(res.statusCode ?? 0));
      res.once("error", reject);
    });
    req.once("error", reject);
    req.end(body);
  });
}

/** Child process of runLoad(): receives the spec over IPC, answers with the result, exits. */
async function run(spec: LoadSpec): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: spec.concurrency });
  const latencies: number[] = [];
  let next = 0;
  let ok = 0;
  let failed = 0;
  const started = performance.now();
  const deadline = started + spec.timeLimitMs;

  async function client(): Promise<void> {
    while (next < spec.requests && performance.now() < deadline) {
      const n = String(next++);
      const t0 = performance.now();
      try {
        const status = await send(agent, new URL(spec.url.replaceAll("{{n}}", n)), spec.method, spec.headers, spec.body.replaceAll("{{n}}", n));
        if (status >= 200 && status < 300) ok++;
        else failed++;
      } catch {
        failed++;
      }
      latencies.push(performance.now() - t0);
    }
  }

  await Promise.all(Array.from({ length: spec.concurrency }, () => client()));
  agent.destroy();
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pick = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { requests: latencies.length, ok, failed, seconds, perSecond: ok / seconds, p50Ms: pick(0.5), p99Ms: pick(0.99) };
}

process.once("message", (spec: LoadSpec) => {
  void run(spec).then((result) => process.send?.(result, () => process.disconnect()));
});
