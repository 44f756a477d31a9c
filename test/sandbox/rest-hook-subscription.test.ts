import type { Appointment, Subscription } from "fhir/r4";
import { describe, expect, it } from "vitest";
import { loadFhirDefinitions } from "../../src/sandbox/fhir-definitions.js";
import { buildHookRequest, parseRestHook, prepareSubscription, shouldNotify } from "../../src/sandbox/rest-hook-subscription.js";
import type { StoredResource } from "../../src/sandbox/sandbox-repository.js";

loadFhirDefinitions();

const stored = <T>(r: T) => r as unknown as StoredResource;

const subscription = (channel: Partial<Subscription["channel"]> = {}, status: Subscription["status"] = "active"): Subscription & { id: string } => ({
  resourceType: "Subscription",
  id: "sub-1",
  status,
  reason: "fhir-notify",
  criteria: "Appointment?status=booked,cancelled",
  channel: { type: "rest-hook", endpoint: "http://127.0.0.1:8080/fhir/notify/", ...channel },
});

const appointment: Appointment & { id: string } = {
  resourceType: "Appointment",
  id: "apt-7781",
  meta: { versionId: "3" },
  status: "cancelled",
  participant: [{ actor: { reference: "Patient/demo-1" }, status: "accepted" }],
};

describe("rest-hook subscription rules", () => {
  it("splits each channel header on the first colon and trims both sides", () => {
    const hook = parseRestHook(stored(subscription({ header: ["Authorization:  Bearer a:b:c ", "X-Source:sandbox"] })));
    expect(hook.headers).toEqual([
      ["Authorization", "Bearer a:b:c"],
      ["X-Source", "sandbox"],
    ]);
  });

  it("activates a requested Subscription and drops the previous error text", () => {
    const prepared = prepareSubscription(stored({ ...subscription({}, "requested"), error: "rest-hook delivery failed" }));
    expect(prepared).toMatchObject({ status: "active" });
    expect(prepared).not.toHaveProperty("error");
    expect(prepareSubscription(stored(subscription({}, "off")))).toMatchObject({ status: "off" });
  });

  it("matches the criteria against the written version and ignores deletes unless asked", () => {
    const hook = parseRestHook(stored(subscription()));
    expect(shouldNotify(hook, "update", stored(appointment))).toBe(true);
    expect(shouldNotify(hook, "update", stored({ ...appointment, status: "proposed" }))).toBe(false);
    expect(shouldNotify(hook, "delete", stored(appointment))).toBe(false);
    expect(shouldNotify(parseRestHook(stored(subscription({}, "off"))), "update", stored(appointment))).toBe(false);
  });

  it("caps HAPI's retry count and defaults to three retries", () => {
    const url = "http://hapifhir.io/fhir/StructureDefinition/subscription-delivery-retry-count";
    expect(parseRestHook(stored(subscription())).maxAttempts).toBe(4);
    expect(parseRestHook(stored(subscription({ extension: [{ url, valueInteger: 500 }] }))).maxAttempts).toBe(11);
  });

  it("builds PUT to the endpoint as a service base with a payload, and a bare POST without", () => {
    const withPayload = buildHookRequest(parseRestHook(stored(subscription({ payload: "application/fhir+json" }))), "update", stored(appointment));
    expect(withPayload).toMatchObject({ method: "PUT", url: "http://127.0.0.1:8080/fhir/notify/Appointment/apt-7781", headers: { "content-type": "application/fhir+json" } });
    expect(JSON.parse(withPayload.body ?? "")).toEqual(appointment);
    const bare = buildHookRequest(parseRestHook(stored(subscription())), "create", stored(appointment));
    expect(bare).toEqual({ method: "POST", url: "http://127.0.0.1:8080/fhir/notify/", headers: {}, body: undefined });
  });

  it("rejects an XML payload and a non-http endpoint", () => {
    expect(() => parseRestHook(stored(subscription({ payload: "application/fhir+xml" })))).toThrow("payload");
    expect(() => parseRestHook(stored(subscription({ endpoint: "file:///etc/passwd" })))).toThrow("endpoint");
  });
});
