import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import type { FhirResource } from "fhir/r4";
import { FhirError } from "../../src/fhir/fhir.port.js";
import type { FakeFhir } from "../fakes/fhir.fake.js";

/**
 * The in-memory FakeFhir behind real HTTP on loopback (read, search, create with If-None-Exist,
 * update with If-Match, metadata). For the scale benchmark: worker processes need an HTTP FHIR
 * server that is never the bottleneck, which the embedded sandbox (full validation, one writer at
 * a time) is not meant to be.
 */
export async function serveFakeFhir(fake: FakeFhir): Promise<{ url: string; stop(): Promise<void> }> {
  const body = async (req: IncomingMessage): Promise<FhirResource> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as FhirResource;
  };
  const server = createServer((req, res) => {
    const send = (status: number, value?: unknown) => {
      res.writeHead(status, { "content-type": "application/fhir+json" });
      res.end(value === undefined ? "" : JSON.stringify(value));
    };
    void (async () => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      const [type, id] = url.pathname.split("/").filter((p) => p.length > 0);
      if (type === "metadata") return send(200, { resourceType: "CapabilityStatement", status: "active", kind: "instance", fhirVersion: "4.0.1", format: ["json"] });
      if (type === undefined) return send(404);
      if (req.method === "GET" && id !== undefined) {
        const found = await fake.read(type as FhirResource["resourceType"], id);
        return found === undefined ? send(404) : send(200, found);
      }
      if (req.method === "GET") return send(200, await fake.search(type, Object.fromEntries(url.searchParams)));
      if (req.method === "POST") {
        const ifNoneExist = req.headers["if-none-exist"];
        const { resource, created } = await fake.create(await body(req), typeof ifNoneExist === "string" ? { ifNoneExist } : {});
        return send(created ? 201 : 200, resource);
      }
      if (req.method === "PUT" && id !== undefined) {
        const ifMatch = req.headers["if-match"];
        return send(200, await fake.update({ ...(await body(req)), id }, typeof ifMatch === "string" ? { ifMatch } : {}));
      }
      return send(405);
    })().catch((err: unknown) => send(err instanceof FhirError && err.status !== undefined ? err.status : 500));
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
