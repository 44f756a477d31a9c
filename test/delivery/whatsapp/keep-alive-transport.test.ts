import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { createKeepAliveTransport } from "../../../src/delivery/whatsapp/keep-alive-transport.js";

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; connections: () => number }> {
  let connections = 0;
  const server: Server = createServer(handler);
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())).then(() => server.closeAllConnections()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections };
}

const post = (body: string) => ({ method: "POST" as const, headers: { "content-type": "application/json" }, body, signal: AbortSignal.timeout(2_000) });

describe("the keep-alive transport of the Cloud API client", () => {
  it("sends the body with its length, returns status, headers and text, and reuses one socket", async () => {
    const seen: string[] = [];
    const server = await serve((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        seen.push(`${req.headers["content-length"]} ${body}`);
        res.writeHead(200, { "content-type": "application/json", "retry-after": "7" }).end('{"messages":[{"id":"wamid.X"}]}');
      });
    });
    const transport = createKeepAliveTransport();

    for (let i = 0; i < 5; i++) {
      const res = await transport(`${server.url}/v23.0/1/messages`, post('{"to":"é"}'));
      expect(res).toMatchObject({ ok: true, status: 200 });
      expect(res.headers.get("Retry-After")).toBe("7");
      expect(await res.text()).toBe('{"messages":[{"id":"wamid.X"}]}');
    }
    // Byte length, not string length: "é" is two bytes.
    expect(seen[0]).toBe('11 {"to":"é"}');
    expect(server.connections()).toBe(1);
  });

  it("fails with ECONNRESET when the connection drops before the response is complete", async () => {
    const server = await serve((req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
      res.write('{"messages":');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const transport = createKeepAliveTransport();

    await expect(transport(server.url, post("{}"))).rejects.toMatchObject({ code: "ECONNRESET" });
  });

  it("fails with ABORT_ERR when the signal fires first", async () => {
    const server = await serve(() => undefined);
    const transport = createKeepAliveTransport();

    await expect(transport(server.url, { ...post("{}"), signal: AbortSignal.timeout(50) })).rejects.toMatchObject({ code: "ABORT_ERR" });
  });
});
