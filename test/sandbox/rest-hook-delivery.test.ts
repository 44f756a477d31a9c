import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import type { Appointment, Subscription } from "fhir/r4";
import { describe, expect, it, onTestFinished } from "vitest";
import { deliveryRetryCountUrl, sendDeleteMessagesUrl } from "../../src/sandbox/rest-hook-subscription.js";
import { createSandboxFhir, type SandboxFhir } from "../../src/sandbox/sandbox-fhir.js";
import { createLogger } from "../../src/shared/logger.js";

const fhirJson = { "content-type": "application/fhir+json" };

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real HTTP peer on loopback; `nth(n)` resolves when the n-th hook arrives. */
async function hookReceiver(options: { status?: number; hold?: Promise<void> } = {}) {
  const received: Received[] = [];
  const waiters: { n: number; resolve: (r: Received) => void }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const hook = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
      received.push(hook);
      for (const w of waiters.filter((w) => w.n === received.length)) w.resolve(hook);
      void (options.hold ?? Promise.resolve()).then(() => {
        res.statusCode = options.status ?? 200;
        res.end();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    nth: (n: number) => (received[n - 1] !== undefined ? Promise.resolve(received[n - 1]!) : new Promise<Received>((resolve) => waiters.push({ n, resolve }))),
  };
}

function sandbox(retryDelayMs: (attempt: number) => number = () => 1): SandboxFhir {
  const s = createSandboxFhir({ publicBaseUrl: "http://127.0.0.1:8080/sandbox/fhir", log: createLogger("silent"), delivery: { retryDelayMs } });
  onTestFinished(() => s.close());
  return s;
}

function subscription(endpoint: string, channel: Partial<Subscription["channel"]> = {}, criteria = "Appointment?status=booked,cancelled"): Subscription {
  return {
    resourceType: "Subscription",
    status: "requested",
    reason: "fhir-notify: appointment logistics messages",
    criteria,
    channel: { type: "rest-hook", endpoint, ...channel },
  };
}

const appointment = (status: Appointment["status"]): Appointment => ({
  resourceType: "Appointment",
  status,
  start: "2025-03-12T14:30:00Z",
  end: "2025-03-12T15:00:00Z",
  participant: [{ actor: { reference: "Patient/demo-1" }, status: "accepted" }],
});

async function create<T extends { resourceType: string }>(s: SandboxFhir, resource: T): Promise<T & { id: string; meta: { versionId: string } }> {
  const res = await s.app.request(`/${resource.resourceType}`, { method: "POST", headers: fhirJson, body: JSON.stringify(resource) });
  expect(res.status).toBe(201);
  return (await res.json()) as T & { id: string; meta: { versionId: string } };
}

describe("sandbox rest-hook subscriptions", () => {
  it("activates a requested rest-hook Subscription on create", async () => {
    const s = sandbox();
    const sub = await create(s, subscription("http://127.0.0.1:9/hooks"));
    expect(sub.status).toBe("active");
  });

  it("rejects Subscriptions it cannot deliver, naming the field", async () => {
    const s = sandbox();
    const post = (body: Subscription) => s.app.request("/Subscription", { method: "POST", headers: fhirJson, body: JSON.stringify(body) });
    const websocket = await post(subscription("http://127.0.0.1:9/hooks", { type: "websocket" }));
    expect(websocket.status).toBe(400);
    expect(await websocket.json()).toMatchObject({ issue: [{ expression: ["Subscription.channel.type"] }] });
    const badHeader = await post(subscription("http://127.0.0.1:9/hooks", { header: ["Authorization Bearer x"] }));
    expect(await badHeader.json()).toMatchObject({ issue: [{ expression: ["Subscription.channel.header[0]"] }] });
    const badCriteria = await post(subscription("http://127.0.0.1:9/hooks", {}, "Appointment?statuss=booked"));
    expect(badCriteria.status).toBe(400);
  });

  it("PUTs a matching new version to {endpoint}/{Type}/{id} with the payload type and every channel header", async () => {
    const s = sandbox();
    const hooks = await hookReceiver();
    await create(
      s,
      subscription(`${hooks.url}/fhir-hooks`, {
        payload: "application/fhir+json",
        header: ["Authorization: Bearer sandbox-secret-1", "X-Correlation: source:sandbox"],
      }),
    );
    await create(s, appointment("proposed")); // does not match the criteria
    const booked = await create(s, appointment("booked"));

    const hook = await hooks.nth(1);
    expect(hook.method).toBe("PUT");
    expect(hook.url).toBe(`/fhir-hooks/Appointment/${booked.id}`);
    expect(hook.headers.authorization).toBe("Bearer sandbox-secret-1");
    expect(hook.headers["x-correlation"]).toBe("source:sandbox");
    expect(hook.headers["content-type"]).toBe("application/fhir+json");
    expect(JSON.parse(hook.body)).toEqual(booked);
  });

  it("POSTs an empty body to the endpoint itself when the Subscription has no payload", async () => {
    const s = sandbox();
    const hooks = await hookReceiver();
    await create(s, subscription(`${hooks.url}/notify?source=sandbox`, { header: ["X-Hook-Token: t0k3n"] }, "Appointment"));
    await create(s, appointment("booked"));
    const hook = await hooks.nth(1);
    expect(hook.method).toBe("POST");
    expect(hook.url).toBe("/notify?source=sandbox");
    expect(hook.body).toBe("");
    expect(hook.headers["x-hook-token"]).toBe("t0k3n");
  });

  it("answers the triggering request before the hook is answered", async () => {
    const s = sandbox();
    let release!: () => void;
    const hooks = await hookReceiver({ hold: new Promise<void>((resolve) => (release = resolve)) });
    await create(s, subscription(hooks.url, {}, "Appointment"));
    await create(s, appointment("booked")); // would never return if delivery ran inside the request
    await hooks.nth(1);
    release();
  });

  it("sends DELETE {endpoint}/{Type}/{id} only to Subscriptions with HAPI's send-delete-messages extension", async () => {
    const s = sandbox();
    const withDeletes = await hookReceiver();
    const withoutDeletes = await hookReceiver();
    await create(s, subscription(withDeletes.url, { payload: "application/fhir+json", extension: [{ url: sendDeleteMessagesUrl, valueBoolean: true }] }));
    await create(s, subscription(withoutDeletes.url, { payload: "application/fhir+json" }));
    const first = await create(s, appointment("booked"));
    expect((await s.app.request(`/Appointment/${first.id}`, { method: "DELETE" })).status).toBe(200);
    const second = await create(s, appointment("cancelled"));

    expect((await withDeletes.nth(2)).method).toBe("DELETE");
    expect(withDeletes.received[1]).toMatchObject({ url: `/Appointment/${first.id}`, body: "" });
    // Deliveries to one Subscription go out in write order, so a skipped delete shows as the next create.
    const next = await withoutDeletes.nth(2);
    expect([next.method, next.url]).toEqual(["PUT", `/Appointment/${second.id}`]);
  });

  it("retries a failing endpoint and then sets the Subscription to error with a reason", async () => {
    const s = sandbox();
    const failing = await hookReceiver({ status: 503 });
    const watcher = await hookReceiver();
    const sub = await create(s, subscription(failing.url, { extension: [{ url: deliveryRetryCountUrl, valueInteger: 2 }] }, "Appointment"));
    await create(s, subscription(watcher.url, { payload: "application/fhir+json" }, "Subscription?status=error"));
    await create(s, appointment("booked"));

    const errored = JSON.parse((await watcher.nth(1)).body) as Subscription;
    expect(errored.id).toBe(sub.id);
    expect(errored.status).toBe("error");
    expect(errored.error).toBe("rest-hook delivery failed after 3 attempts: HTTP 503");
    expect(failing.received).toHaveLength(3);
  });

  it("stops retrying on close without waiting for the backoff", async () => {
    const s = sandbox(() => 3_600_000);
    const failing = await hookReceiver({ status: 500 });
    const sub = await create(s, subscription(failing.url, {}, "Appointment"));
    await create(s, appointment("booked"));
    await failing.nth(1);
    await s.close();
    const current = (await (await s.app.request(`/Subscription/${sub.id}`)).json()) as Subscription;
    expect(current.status).toBe("active");
    expect(failing.received).toHaveLength(1);
  });
});
