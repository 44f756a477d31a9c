import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Bundle, Subscription } from "fhir/r4";
import { onTestFinished } from "vitest";

/**
 * The Subscription part of a FHIR server, as a real HTTP server on loopback, behaving like one
 * server kind: `medplum` stores the status it is given and never activates a `requested`
 * Subscription (Medplum delivers only `active` ones); `hapi` moves `requested` to `active` on write,
 * as HAPI's activating subscriber does. `/metadata` names the software as each server does
 * (Medplum: `software.name: "medplum"`, packages/server/src/fhir/metadata.ts).
 */
export interface FakeSubscriptionServer {
  baseUrl: string;
  /** Subscriptions as stored now, by id. */
  stored(): Subscription[];
  /** Status of every Subscription body we sent in a create or update, in order. */
  written: string[];
  /** Store a Subscription as if written earlier (e.g. by an older build), with its lastUpdated. */
  seed(subscription: Subscription, lastUpdated: string): Subscription;
}

export async function startFakeSubscriptionServer(kind: "medplum" | "hapi"): Promise<FakeSubscriptionServer> {
  const subscriptions = new Map<string, Subscription>();
  const written: string[] = [];
  let baseUrl = "";

  const store = (sub: Subscription, lastUpdated = new Date().toISOString()): Subscription => {
    const id = sub.id ?? randomUUID();
    const previous = subscriptions.get(id);
    const status = kind === "hapi" && sub.status === "requested" ? "active" : sub.status;
    const versionId = String(Number(previous?.meta?.versionId ?? "0") + 1);
    const stored: Subscription = { ...sub, id, status, meta: { ...sub.meta, versionId, lastUpdated } };
    subscriptions.set(id, stored);
    return stored;
  };

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/fhir+json" });
    res.end(JSON.stringify(body));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", baseUrl);
    const path = url.pathname.replace(/^\/fhir/, "");
    let raw = "";
    for await (const chunk of req) raw += String(chunk);
    if (req.method === "GET" && path === "/metadata") {
      const software = kind === "medplum" ? { name: "medplum", version: "5.0.2" } : { name: "HAPI FHIR Server", version: "8.0.0" };
      return send(res, 200, { resourceType: "CapabilityStatement", status: "active", kind: "instance", fhirVersion: "4.0.1", format: ["json"], software });
    }
    if (req.method === "GET" && path === "/Subscription") {
      const tag = url.searchParams.get("_tag");
      const [system, code] = (tag ?? "").split("|");
      const matches = [...subscriptions.values()].filter((s) => tag === null || (s.meta?.tag ?? []).some((t) => t.system === system && t.code === code));
      const bundle: Bundle = { resourceType: "Bundle", type: "searchset", total: matches.length, entry: matches.map((resource) => ({ fullUrl: `${baseUrl}/Subscription/${resource.id}`, resource })) };
      return send(res, 200, bundle);
    }
    const instance = /^\/Subscription\/([A-Za-z0-9\-.]{1,64})$/.exec(path);
    if (req.method === "GET" && instance !== null) {
      const found = subscriptions.get(instance[1]!);
      return found !== undefined ? send(res, 200, found) : send(res, 404, { resourceType: "OperationOutcome", issue: [{ severity: "error", code: "not-found" }] });
    }
    if ((req.method === "POST" && path === "/Subscription") || (req.method === "PUT" && instance !== null)) {
      const body = JSON.parse(raw) as Subscription;
      written.push(body.status);
      const stored = store({ ...body, ...(instance !== null ? { id: instance[1]! } : { id: undefined }) });
      return send(res, req.method === "POST" ? 201 : 200, stored);
    }
    return send(res, 404, { resourceType: "OperationOutcome", issue: [{ severity: "error", code: "not-supported" }] });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => send(res, 500, { resourceType: "OperationOutcome", issue: [{ severity: "error", code: "exception" }] }));
  });
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
  onTestFinished(() => new Promise<void>((done) => server.close(() => done())));
  return {
    baseUrl,
    stored: () => [...subscriptions.values()],
    written,
    seed: (subscription, lastUpdated) => store(subscription, lastUpdated),
  };
}
