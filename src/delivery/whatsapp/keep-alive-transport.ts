import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";

/** The part of a fetch Response the Cloud API client reads; a real fetch satisfies it too. */
export interface TransportResponse {
  ok: boolean;
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}

export interface TransportInit {
  method: "GET" | "POST";
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

/** fetch-shaped: `fetch` itself can be passed where a Transport is asked for (tests do). */
export type Transport = (url: string, init: TransportInit) => Promise<TransportResponse>;

/**
 * HTTP for the send path on node:http(s) with keep-alive agents. undici's fetch cost about a fifth
 * of the send worker's CPU per message (web streams, Request/Response objects, AbortSignal
 * bookkeeping); a plain request on a pooled socket does the same job for a fraction.
 *
 * Errors keep Node's codes (ECONNREFUSED, ENOTFOUND, ECONNRESET, ABORT_ERR), so the client can
 * still tell a request that never left from one that may have reached Meta.
 */
export function createKeepAliveTransport(opts: { maxSockets?: number } = {}): Transport {
  const agentOptions = {
    keepAlive: true,
    maxSockets: opts.maxSockets ?? 64,
    // Idle sockets are dropped after 4 s (undici's default too), before servers tend to close them,
    // so a reused socket is rarely one the server is closing at the same moment.
    timeout: 4_000,
  };
  const http = new HttpAgent(agentOptions);
  const https = new HttpsAgent(agentOptions);

  return (url, init) =>
    new Promise<TransportResponse>((resolve, reject) => {
      const target = new URL(url);
      const secure = target.protocol === "https:";
      const headers = init.body !== undefined ? { ...init.headers, "content-length": String(Buffer.byteLength(init.body)) } : init.headers;
      const req = (secure ? httpsRequest : httpRequest)(target, { method: init.method, headers, agent: secure ? https : http, signal: init.signal }, (res) => {
        readText(res).then((text) => resolve(responseOf(res, text)), reject);
      });
      req.once("error", reject);
      req.end(init.body);
    });
}

function readText(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (chunk: Buffer) => chunks.push(chunk));
    res.once("end", () => resolve(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")));
    res.once("error", reject);
    // The server or a proxy closed the connection before the body was complete.
    res.once("aborted", () => reject(Object.assign(new Error("response aborted"), { code: "ECONNRESET" })));
  });
}

function responseOf(res: IncomingMessage, body: string): TransportResponse {
  const status = res.statusCode ?? 0;
  return {
    ok: status >= 200 && status < 300,
    status,
    headers: {
      get(name) {
        const value = res.headers[name.toLowerCase()];
        return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
      },
    },
    text: () => Promise.resolve(body),
  };
}
