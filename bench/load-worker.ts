import type { LoadResult, LoadSpec } from "./load.js";

/** Child process of runLoad(): receives the spec over IPC, answers with the result, exits. */
async function run(spec: LoadSpec): Promise<LoadResult> {
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
        const res = await fetch(spec.url.replaceAll("{{n}}", n), { method: spec.method, headers: spec.headers, body: spec.body.replaceAll("{{n}}", n) });
        await res.arrayBuffer();
        if (res.status >= 200 && res.status < 300) ok++;
        else failed++;
      } catch {
        failed++;
      }
      latencies.push(performance.now() - t0);
    }
  }

  await Promise.all(Array.from({ length: spec.concurrency }, () => client()));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pick = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { requests: latencies.length, ok, failed, seconds, perSecond: ok / seconds, p50Ms: pick(0.5), p99Ms: pick(0.99) };
}

process.once("message", (spec: LoadSpec) => {
  void run(spec).then((result) => process.send?.(result, () => process.disconnect()));
});
