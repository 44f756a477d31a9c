import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Bundle } from "fhir/r4";

/**
 * A FHIR server whose conditional create is not atomic, as a real HTTP server on loopback: it
 * stands in front of another FHIR server (the sandbox) and forwards everything, except that a
 * `POST [type]` with `If-None-Exist` is done the way older HAPI and Microsoft's fhir-server do it
 * without a unique index — search, then create, with a gap between. The gap is deliberately wide:
 * a request that found no match waits there until a second conditional create with the same
 * criteria has searched too (or `raceWindowMs` passes), so two concurrent creates always both
 * create. It records every request so a test can count FHIR round trips.
 */

export interface SeenFhirRequest {
  method: string;
  /** Path below the base, e.g. "/Communication/12" or "/Communication". */
  path: string;
  ifMatch?: string;
  ifNoneExist?: string;
  status: number;
}

export interface RacyFhirServer {
  /** The base URL clients use, e.g. http://127.0.0.1:40123/fhir. */
  readonly baseUrl: string;
  readonly requests: SeenFhirRequest[];
  /** Conditional creates that searched, found nothing, and created. */
  readonly racedCreates: number;
  stop(): Promise<void>;
}

export async function startRacyFhirServer(opts: { upstreamBaseUrl: string; raceWindowMs?: number }): Promise<RacyFhirServer> {
  const upstream = opts.upstreamBaseUrl.replace(/\/+$/, "");
  const raceWindowMs = opts.raceWindowMs ?? 1_000;
  const requests: SeenFhirRequest[] = [];
  let racedCreates = 0;
  let baseUrl = "";
  /** Conditional creates waiting in the gap, by criteria: each one's release. */
  const inGap = new Map<string, (() => void)[]>();

  // The upstream's own URLs (fullUrl, Location, links) are rewritten to ours, as a real server's would be.
  const rewrite = (text: string) => text.split(upstream).join(baseUrl);

  async function forward(method: string, path: string, headers: Headers, body: string | undefined): Promise<Response> {
    return fetch(`${upstream}${path}`, { method, headers, ...(body !== undefined && body !== "" ? { body } : {}) });
  }

  /** Wait in the search-then-create gap until a partner with the same criteria arrives, or the window ends. */
  function gap(criteria: string): Promise<void> {
    return new Promise((resolve) => {
      const waiting = inGap.get(criteria) ?? [];
      if (waiting.length > 0) {
        inGap.delete(criteria);
        for (const release of waiting) release();
        resolve();
        return;
      }
      const timer = setTimeout(() => {
        inGap.delete(criteria);
        resolve();
      }, raceWindowMs);
      inGap.set(criteria, [
        () => {
          clearTimeout(timer);
          resolve();
        },
      ]);
    });
  }

  async function conditionalCreate(type: string, criteria: string, headers: Headers, body: string): Promise<Response> {
    const found = await fetch(`${upstream}/${type}?${criteria}`, { headers: { accept: "application/fhir+json" } });
    const bundle = (await found.json()) as Bundle;
    const matches = bundle.entry ?? [];
    if (matches.length > 1) {
      const outcome = { resourceType: "OperationOutcome", issue: [{ severity: "error", code: "duplicate", diagnostics: "Multiple resources match this search" }] };
      return new Response(JSON.stringify(outcome), { status: 412, headers: { "content-type": "application/fhir+json" } });
    }
    const match = matches[0]?.resource;
    if (match !== undefined) {
      const headers: Record<string, string> = { "content-type": "application/fhir+json" };
      if (match.meta?.versionId !== undefined) headers.etag = `W/"${match.meta.versionId}"`;
      return new Response(JSON.stringify(match), { status: 200, headers });
    }
    await gap(`${type}?${criteria}`);
    racedCreates++;
    const plain = new Headers(headers);
    plain.delete("if-none-exist");
    return forward("POST", `/${type}`, plain, body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url ?? "/", "http://fake");
    const path = `${url.pathname.replace(/^\/fhir/, "")}${url.search}`;
    const method = req.method ?? "GET";
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === "string" && !["host", "connection", "content-length"].includes(name)) headers.set(name, value);
    }
    const ifNoneExist = headers.get("if-none-exist") ?? undefined;
    const ifMatch = headers.get("if-match") ?? undefined;
    const type = /^\/([A-Z][A-Za-z]+)$/.exec(url.pathname.replace(/^\/fhir/, ""))?.[1];

    const answer = method === "POST" && type !== undefined && ifNoneExist !== undefined ? await conditionalCreate(type, ifNoneExist, headers, body) : await forward(method, path, headers, body);
    requests.push({ method, path: url.pathname.replace(/^\/fhir/, ""), status: answer.status, ...(ifMatch !== undefined ? { ifMatch } : {}), ...(ifNoneExist !== undefined ? { ifNoneExist } : {}) });

    const out: Record<string, string> = {};
    for (const name of ["content-type", "etag", "location", "content-location", "last-modified", "retry-after"]) {
      const value = answer.headers.get(name);
      if (value !== null) out[name] = rewrite(value);
    }
    res.writeHead(answer.status, out);
    res.end(rewrite(await answer.text()));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(err instanceof Error ? err.message : "fake FHIR server error");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;

  return {
    baseUrl,
    requests,
    get racedCreates() {
      return racedCreates;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const waiting of inGap.values()) for (const release of waiting) release();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
