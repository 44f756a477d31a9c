import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { toCloudApiRequest } from "../../../src/delivery/whatsapp/cloud-api.request.js";
import type { TemplateMessage } from "../../../src/shared/template-message.js";
import { startFakeGraphApi, type FakeGraphApi } from "../../fakes/graph-api.server.js";

// The fake must say no where Meta says no, or the client tests prove nothing. These go around the
// client (which validates first) and post raw bodies.

const message: TemplateMessage = {
  to: "+15557654321",
  templateName: "pickup_ready_v1",
  languageCode: "es",
  bodyParameters: ["Alex", "Farmacia Riverside, calle Mayor", "lun-sáb 8:00-20:00", "K7P-42"],
  buttons: [],
  callbackData: "dlv_pickup_1",
};

describe("fake Graph API", () => {
  let graph: FakeGraphApi;
  beforeEach(async () => {
    graph = await startFakeGraphApi();
  });
  afterEach(async () => {
    await graph.stop();
  });

  async function post(body: unknown, path = `/v23.0/${graph.phoneNumberId}/messages`, token = graph.accessToken) {
    const res = await fetch(`${graph.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as { error?: { code: number; error_data: { details: string } }; messages?: { id: string }[] } };
  }

  const withParams = (params: string[]) => toCloudApiRequest({ ...message, bodyParameters: params });

  it("accepts a valid send and records it once", async () => {
    const { status, json } = await post(toCloudApiRequest(message));
    expect(status).toBe(200);
    expect(graph.records).toEqual([expect.objectContaining({ to: "15557654321", template: "pickup_ready_v1", language: "es", wamid: json.messages?.[0]?.id })]);
  });

  it.each([
    ["a new line", "Farmacia\nRiverside"],
    ["five spaces", "Farmacia     Riverside"],
  ])("answers 132018 for a parameter with %s", async (_, value) => {
    const { status, json } = await post(withParams(["Alex", value, "lun", "K7P-42"]));
    expect(status).toBe(400);
    expect(json.error).toMatchObject({ code: 132018, error_data: { details: "Param text cannot have new-line/tab characters or more than 4 consecutive spaces" } });
  });

  it("answers 132005 when the hydrated body exceeds 1,024 characters", async () => {
    const { json } = await post(withParams(["Alex", "F".repeat(900), "lun", "K7P-42"]));
    expect(json.error?.code).toBe(132005);
  });

  it("answers 131009 for a button the template does not have", async () => {
    const { json } = await post(toCloudApiRequest({ ...message, buttons: [{ subType: "url", index: 0, text: "abc" }] }));
    expect(json.error?.code).toBe(131009);
  });

  it("answers 132001 with HTTP 404 for a template not approved in that language", async () => {
    const { status, json } = await post(toCloudApiRequest({ ...message, languageCode: "en_GB" }));
    expect([status, json.error?.code]).toEqual([404, 132001]);
  });

  it("answers 100 for another phone number id and for an unversioned path", async () => {
    expect((await post(toCloudApiRequest(message), "/v23.0/999/messages")).json.error?.code).toBe(100);
    expect((await post(toCloudApiRequest(message), `/${graph.phoneNumberId}/messages`)).json.error?.code).toBe(100);
  });

  it("answers 190 with HTTP 401 for a wrong token", async () => {
    const { status, json } = await post(toCloudApiRequest(message), undefined, "nope");
    expect([status, json.error?.code]).toEqual([401, 190]);
  });

  it("applies an injected fault only as many times as asked", async () => {
    graph.inject("+15557654321", { kind: "error", code: 131056 }, 2);
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await post(toCloudApiRequest(message))).json.error?.code ?? "ok");
    expect(codes).toEqual([131056, 131056, "ok"]);
    expect(graph.sentTo("15557654321")).toBe(1);
  });
});
