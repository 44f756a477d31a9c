import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A loopback HTTP proxy in front of a real server (the sandbox FHIR server, the fake Graph API)
 * that can fail requests on demand: a bare 5xx, a hang until the caller times out, or a reset.
 * Every request is recorded with its body, so a test can also scan what went over the wire.
 */

export type ProxyFault = { kind: "status"; status: number; retryAfter?: string } | { kind: "hang" } | { kind: "reset" };

export interface ProxiedRequest {
  method: string;
  path: string;
  body: string;
  /** 0 while unanswered, or when the fault was a hang or a reset. */
  status: number;
  faulted: boolean;
}

export interface FaultProxy {
  url: string;
  requests: ProxiedRequest[];
  /** Fail every request (matching `when`, if given) with this fault until heal(). */
  fail(fault: ProxyFault, when?: (method: string, path: string, body: string) => boolean): void;
  heal(): void;
  faulted(): number;
  stop(): Promise<void>;
}

export async function startFaultProxy(targetOrigin: string): Promise<FaultProxy> {
  const target = new URL(targetOrigin);
  const requests: ProxiedRequest[] = [];
  const hanging = new Set<ServerResponse>();
  let fault: { fault: ProxyFault; when: (method: string, path: string, body: string) => boolean } | undefined;

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const seen: ProxiedRequest = { method: req.method ?? "", path: req.url ?? "/", body: body.toString("utf8"), status: 0, faulted: false };
      requests.push(seen);
      const active = fault !== undefined && fault.when(seen.method, seen.path, seen.body) ? fault.fault : undefined;
      if (active !== undefined) {
        seen.faulted = true;
        switch (active.kind) {
          case "status":
            seen.status = active.status;
            res.writeHead(active.status, active.retryAfter !== undefined ? { "retry-after": active.retryAfter } : {});
            res.end();
            return;
          case "hang":
            // Never answered: the caller's timeout fires; heal() or stop() closes it.
            hanging.add(res);
            return;
          case "reset":
            req.socket.destroy();
            return;
        }
      }
      const upstream = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
        (answer) => {
          seen.status = answer.statusCode ?? 0;
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on("error", () => {
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy();
      });
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const releaseHanging = () => {
    for (const res of hanging) res.destroy();
    hanging.clear();
  };

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    fail: (f, when = () => true) => {
      fault = { fault: f, when };
    },
    heal: () => {
      fault = undefined;
      releaseHanging();
    },
    faulted: () => requests.filter((r) => r.faulted).length,
    stop: async () => {
      releaseHanging();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
