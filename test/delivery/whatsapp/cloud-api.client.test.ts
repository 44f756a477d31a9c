import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createCloudApiClient, probeSender, type CloudApiClientConfig } from "../../../src/delivery/whatsapp/cloud-api.client.js";
import { SendError } from "../../../src/delivery/whatsapp/whatsapp.port.js";
import type { TemplateMessage } from "../../../src/shared/template-message.js";
import { createLogger } from "../../../src/shared/logger.js";
import { startFakeGraphApi, type FakeGraphApi } from "../../fakes/graph-api.server.js";
import { reminderMessage } from "../../fixtures/whatsapp/template-message.js";

const table = JSON.parse(readFileSync(new URL("../../fixtures/whatsapp/error-codes.json", import.meta.url), "utf8")) as {
  code: number;
  failure: string;
}[];

const silent = createLogger("silent");

const reminder = (overrides: Partial<TemplateMessage> = {}): TemplateMessage => reminderMessage({ callbackData: "dlv_src_rule_Appointment_a1_3f2a", ...overrides });

async function sendError(p: Promise<unknown>): Promise<SendError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SendError);
  return err as SendError;
}

/** A loopback port nothing listens on: bind, read the port, close. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("createCloudApiClient against the fake Graph API", () => {
  let graph: FakeGraphApi;
  let cfg: CloudApiClientConfig;

  beforeEach(async () => {
    graph = await startFakeGraphApi();
    cfg = { apiBase: graph.url, graphVersion: "v23.0", phoneNumberId: graph.phoneNumberId, accessToken: graph.accessToken, timeoutMs: 5_000 };
  });
  afterEach(async () => {
    await graph.stop();
  });

  it("returns Meta's wamid, wa_id and message_status for an accepted template", async () => {
    const result = await createCloudApiClient(cfg, silent).sendTemplate(reminder());

    expect(graph.records).toHaveLength(1);
    const record = graph.records[0]!;
    expect(result).toEqual({ wamid: record.wamid, waId: "15557654321", messageStatus: "accepted" });
    expect(record).toMatchObject({
      to: "15557654321",
      template: "appointment_reminder_v1",
      language: "en_US",
      bodyParams: ["Alex", "Riverside Clinic", "Tuesday 14 October", "09:30"],
      buttons: [
        { subType: "quick_reply", index: "0", value: "rc1:CONFIRM:q7Hk2" },
        { subType: "quick_reply", index: "1", value: "rc1:RESCHEDULE:q7Hk2" },
      ],
      callbackData: "dlv_src_rule_Appointment_a1_3f2a",
    });
  });

  it("sends a URL-button template with its opaque suffix", async () => {
    await createCloudApiClient(cfg, silent).sendTemplate(
      reminder({ templateName: "portal_document_available_v1", bodyParameters: ["Alex", "Riverside Clinic"], buttons: [{ subType: "url", index: 0, text: "Zx81kQ" }] }),
    );
    expect(graph.records[0]?.buttons).toEqual([{ subType: "url", index: "0", value: "Zx81kQ" }]);
  });

  it("reports a message held for quality assessment so the caller never resends it", async () => {
    graph.inject("15557654321", { kind: "held" });
    const result = await createCloudApiClient(cfg, silent).sendTemplate(reminder());
    expect(result.messageStatus).toBe("held_for_quality_assessment");
  });

  it.each(table)("turns Meta error $code into a SendError of class $failure with the code attached", async ({ code, failure }) => {
    graph.inject("15557654321", { kind: "error", code });
    const err = await sendError(createCloudApiClient(cfg, silent).sendTemplate(reminder()));
    expect(err.failure).toBe(failure);
    expect(err.extra.code).toBe(code);
    expect(err.extra.fbtraceId).toMatch(/^A/);
    expect(err.extra.phase).toBeUndefined();
    expect(graph.records).toHaveLength(0);
  });

  it("passes the pair-rate backoff along with a 131056 rejection", async () => {
    graph.inject("15557654321", { kind: "error", code: 131056 });
    const err = await sendError(createCloudApiClient(cfg, silent).sendTemplate(reminder()));
    expect(err).toMatchObject({ failure: "rate-limited", retryable: true, extra: { retryAfterMs: 1_000 } });
  });

  it("fails with the template class when the template is not approved in that language", async () => {
    const err = await sendError(createCloudApiClient(cfg, silent).sendTemplate(reminder({ languageCode: "pt_BR" })));
    expect(err).toMatchObject({ failure: "template", extra: { code: 132001 } });
  });

  it("fails with the template class when the parameter count does not match the approved template", async () => {
    const err = await sendError(createCloudApiClient(cfg, silent).sendTemplate(reminder({ bodyParameters: ["Alex", "Riverside Clinic"] })));
    expect(err).toMatchObject({ failure: "template", extra: { code: 132000 } });
  });

  it("halts the sender when the token is rejected", async () => {
    const err = await sendError(createCloudApiClient({ ...cfg, accessToken: "expired" }, silent).sendTemplate(reminder()));
    expect(err).toMatchObject({ failure: "halt-sender", retryable: false, extra: { code: 190 } });
  });

  it.each([
    ["a new line", "Riverside\nClinic"],
    ["a tab", "Riverside\tClinic"],
    ["five spaces", "Riverside     Clinic"],
    ["an empty value", ""],
  ])("refuses a parameter with %s before anything reaches Meta", async (_, value) => {
    const err = await sendError(createCloudApiClient(cfg, silent).sendTemplate(reminder({ bodyParameters: ["Alex", value, "Tuesday", "09:30"] })));
    expect(err.failure).toBe("template");
    expect(err.message).toContain("template.components");
    expect(err.message).not.toContain("Riverside");
    expect(graph.requests).toHaveLength(0);
  });

  it("treats a bare 429 as rate limiting and honours Retry-After", async () => {
    graph.inject("15557654321", { kind: "bare-status", httpStatus: 429, retryAfter: "7" });
    const err = await sendError(createCloudApiClient(cfg, silent).sendTemplate(reminder()));
    expect(err).toMatchObject({ failure: "rate-limited", extra: { retryAfterMs: 7_000 } });
  });

  it("treats a bare 503 as transient and not processed, so it is retried like any transient failure", async () => {
    graph.inject("15557654321", { kind: "bare-status", httpStatus: 503 });
    const err = await sendError(createCloudApiClient(cfg, silent).sendTemplate(reminder()));
    expect(err).toMatchObject({ failure: "transient", retryable: true });
    expect(err.extra.phase).toBeUndefined();
  });

  it("treats a bare 4xx other than 429 as an unknown permanent failure", async () => {
    graph.inject("15557654321", { kind: "bare-status", httpStatus: 418 });
    const err = await sendError(createCloudApiClient(cfg, silent).sendTemplate(reminder()));
    expect(err).toMatchObject({ failure: "unknown", retryable: false });
  });

  it("marks a timeout after the request left as after_send, while Meta did accept the message", async () => {
    graph.inject("15557654321", { kind: "slow" });
    const err = await sendError(createCloudApiClient({ ...cfg, timeoutMs: 100 }, silent).sendTemplate(reminder()));
    expect(err).toMatchObject({ failure: "transient", retryable: true, extra: { phase: "after_send" } });
    // The double-send hazard, visible: the fake holds exactly one accepted message.
    expect(graph.sentTo("+15557654321")).toBe(1);
  });

  it("marks a connection reset after the request was read as after_send", async () => {
    graph.inject("15557654321", { kind: "reset" });
    const err = await sendError(createCloudApiClient(cfg, silent).sendTemplate(reminder()));
    expect(err).toMatchObject({ failure: "transient", extra: { phase: "after_send" } });
    expect(graph.sentTo("15557654321")).toBe(1);
  });

  it("sends exactly once when a throttled first try is followed by a retry", async () => {
    graph.inject("15557654321", { kind: "error", code: 130429 }, 1);
    const client = createCloudApiClient(cfg, silent);
    await sendError(client.sendTemplate(reminder()));
    await client.sendTemplate(reminder());
    expect(graph.sentTo("15557654321")).toBe(1);
    expect(graph.requests.map((r) => r.status)).toEqual([400, 200]);
  });

  it("never writes the phone number, parameter values, payloads or the token to the log", async () => {
    const lines: string[] = [];
    const log = createLogger(
      "trace",
      new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(chunk.toString("utf8"));
          done();
        },
      }),
    );
    const client = createCloudApiClient(cfg, log);
    await client.sendTemplate(reminder());
    graph.inject("15557654321", { kind: "error", code: 131026, details: "15557654321 is not a WhatsApp user" });
    await sendError(client.sendTemplate(reminder()));
    const out = lines.join("");
    expect(out).toContain("cloud api rejected the message");
    for (const secret of ["5557654321", "Alex", "Riverside", "rc1:CONFIRM", graph.accessToken]) expect(out).not.toContain(secret);
  });
});

describe("createCloudApiClient transport failures", () => {
  it("marks connection refused as before_send, so a retry cannot double-send", async () => {
    const port = await closedPort();
    const client = createCloudApiClient({ apiBase: `http://127.0.0.1:${port}`, graphVersion: "v23.0", phoneNumberId: "1", accessToken: "t", timeoutMs: 2_000 }, silent);
    const err = await sendError(client.sendTemplate(reminder()));
    expect(err).toMatchObject({ failure: "transient", retryable: true, extra: { phase: "before_send" } });
  });

  it("marks a DNS failure as before_send", async () => {
    const dnsFailure: typeof fetch = () => Promise.reject(new TypeError("fetch failed", { cause: Object.assign(new Error("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" }) }));
    const client = createCloudApiClient({ apiBase: "https://graph.invalid", graphVersion: "v23.0", phoneNumberId: "1", accessToken: "t", timeoutMs: 2_000 }, silent, dnsFailure);
    const err = await sendError(client.sendTemplate(reminder()));
    expect(err.extra.phase).toBe("before_send");
  });

  it("marks an error it cannot place as after_send, because the message may have gone", async () => {
    const odd: typeof fetch = () => Promise.reject(new TypeError("fetch failed", { cause: Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" }) }));
    const client = createCloudApiClient({ apiBase: "https://graph.example", graphVersion: "v23.0", phoneNumberId: "1", accessToken: "t", timeoutMs: 2_000 }, silent, odd);
    const err = await sendError(client.sendTemplate(reminder()));
    expect(err.extra.phase).toBe("after_send");
  });

  it("treats a 2xx without a message id as an unknown outcome", async () => {
    const empty: typeof fetch = () => Promise.resolve(new Response("<html>ok</html>", { status: 200 }));
    const client = createCloudApiClient({ apiBase: "https://graph.example", graphVersion: "v23.0", phoneNumberId: "1", accessToken: "t", timeoutMs: 2_000 }, silent, empty);
    const err = await sendError(client.sendTemplate(reminder()));
    expect(err).toMatchObject({ failure: "transient", extra: { phase: "after_send" } });
  });

  it("posts to the pinned version and phone number id with a bearer token", async () => {
    const seen: { url: string; auth: string | null }[] = [];
    const capture: typeof fetch = (input, init) => {
      seen.push({ url: input instanceof Request ? input.url : input.toString(), auth: new Headers(init?.headers).get("authorization") });
      return Promise.resolve(Response.json({ messages: [{ id: "wamid.X" }] }));
    };
    const client = createCloudApiClient({ apiBase: "https://graph.facebook.com/", graphVersion: "v25.0", phoneNumberId: "200000000000002", accessToken: "tok", timeoutMs: 2_000 }, silent, capture);
    await expect(client.sendTemplate(reminder())).resolves.toEqual({ wamid: "wamid.X", messageStatus: "accepted" });
    expect(seen).toEqual([{ url: "https://graph.facebook.com/v25.0/200000000000002/messages", auth: "Bearer tok" }]);
  });
});

describe("probeSender", () => {
  let graph: FakeGraphApi;
  beforeEach(async () => {
    graph = await startFakeGraphApi();
  });
  afterEach(async () => {
    await graph.stop();
  });
  const cfgFor = (g: FakeGraphApi, token = g.accessToken): CloudApiClientConfig => ({
    apiBase: g.url,
    graphVersion: "v23.0",
    phoneNumberId: g.phoneNumberId,
    accessToken: token,
    timeoutMs: 2_000,
  });

  it("reports a healthy sender when the token can read the number", async () => {
    await expect(probeSender(cfgFor(graph), silent)).resolves.toBe(true);
    expect(graph.requests[0]).toMatchObject({ method: "GET", path: `/v23.0/${graph.phoneNumberId}`, status: 200 });
  });

  it("reports an unhealthy sender when the token is rejected", async () => {
    await expect(probeSender(cfgFor(graph, "revoked"), silent)).resolves.toBe(false);
  });

  it("reports an unhealthy sender when Meta answers with an account error", async () => {
    graph.setProbeError(131031);
    await expect(probeSender(cfgFor(graph), silent)).resolves.toBe(false);
  });

  it("reports an unhealthy sender instead of throwing when nothing listens", async () => {
    const port = await closedPort();
    await expect(probeSender({ ...cfgFor(graph), apiBase: `http://127.0.0.1:${port}` }, silent)).resolves.toBe(false);
  });
});
