import { http, HttpResponse } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createCloudApiClient, type CloudApiClientConfig } from "../../../src/delivery/whatsapp/cloud-api.client.js";
import { SendError } from "../../../src/delivery/whatsapp/whatsapp.port.js";
import { createLogger } from "../../../src/shared/logger.js";
import { reminderMessage } from "../../fixtures/whatsapp/template-message.js";

/**
 * A 5xx from something in front of Graph (a load balancer or proxy: HTML or an empty body) means
 * Meta never processed the request; a 5xx carrying Meta's error JSON is Meta's own answer.
 */

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

const cfg: CloudApiClientConfig = { apiBase: "https://graph.facebook.com", graphVersion: "v23.0", phoneNumberId: "106540352242922", accessToken: "EAAG-test-token", timeoutMs: 2_000 };
const sendUrl = `${cfg.apiBase}/${cfg.graphVersion}/${cfg.phoneNumberId}/messages`;
const silent = createLogger("silent");

const loadBalancerHtml = (status: number, title: string) =>
  new HttpResponse(`<html>\r\n<head><title>${status} ${title}</title></head>\r\n<body>\r\n<center><h1>${status} ${title}</h1></center>\r\n</body>\r\n</html>\r\n`, {
    status,
    headers: { "content-type": "text/html" },
  });

async function sendError(answer: () => Response): Promise<{ err: SendError; requests: number }> {
  let requests = 0;
  server.use(
    http.post(sendUrl, () => {
      requests += 1;
      return answer();
    }),
  );
  // fetch as the transport: msw intercepts it (the keep-alive agent's sockets bypass the interceptor).
  const err = await createCloudApiClient(cfg, silent, fetch)
    .sendTemplate(reminderMessage())
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(SendError);
  return { err: err as SendError, requests };
}

describe("a Graph 5xx without Meta's error body", () => {
  it.each([
    ["502 with a load balancer's HTML page", () => loadBalancerHtml(502, "Bad Gateway")],
    ["503 with an empty body", () => new HttpResponse(null, { status: 503 })],
    ["504 with a load balancer's HTML page", () => loadBalancerHtml(504, "Gateway Time-out")],
    ["500 with JSON that is not Meta's envelope", () => HttpResponse.json({ message: "upstream connect error" }, { status: 500 })],
  ])("is retryable and not in doubt: %s", async (_, answer) => {
    const { err, requests } = await sendError(answer);
    expect(requests).toBe(1);
    expect(err.failure).toBe("transient");
    expect(err.retryable).toBe(true);
    // No phase "after_send": the send worker clears its in-flight mark and retries normally.
    expect(err.extra.phase).toBeUndefined();
    expect(err.extra.code).toBeUndefined();
  });
});

describe("a Graph 5xx with Meta's error JSON", () => {
  const metaError = (code: number, status: number) =>
    HttpResponse.json(
      { error: { message: `(#${code}) Service temporarily unavailable`, type: "OAuthException", code, error_data: { messaging_product: "whatsapp", details: "Service temporarily unavailable" }, fbtrace_id: "AbCdEfGh12" } },
      { status },
    );

  it("keeps Meta's transient classification (131016 on a 503)", async () => {
    const { err } = await sendError(() => metaError(131016, 503));
    expect(err).toMatchObject({ failure: "transient", extra: { code: 131016, fbtraceId: "AbCdEfGh12" } });
  });

  it("keeps Meta's classification when the code is not transient (190 on a 500 halts the sender)", async () => {
    const { err } = await sendError(() => metaError(190, 500));
    expect(err).toMatchObject({ failure: "halt-sender", retryable: false, extra: { code: 190 } });
  });
});
