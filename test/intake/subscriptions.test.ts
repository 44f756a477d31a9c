import type { Subscription } from "fhir/r4";
import { describe, expect, it } from "vitest";
import { desiredSubscriptions, initialStatusFor, listSubscriptions, subscriptionProblem, syncSubscriptions } from "../../src/intake/subscriptions.js";
import { sourceConfigSchema } from "../../src/intake/source.config.js";
import { FakeFhir } from "../fakes/fhir.fake.js";

const endpoint = "https://notify.example.org/hooks/fhir/hapi-main";
const secretHeader = "Authorization: Bearer 7f3c0d9e2b41a6c8d5e7f90a1b2c3d4e";
const classic = sourceConfigSchema.parse({
  auth: { type: "bearer", token: "7f3c0d9e2b41a6c8d5e7f90a1b2c3d4e" },
  resourceTypes: ["Appointment", "MedicationDispense"],
  subscription: { style: "r4-rest-hook", payload: "full-resource" },
});
const topics = sourceConfigSchema.parse({
  auth: { type: "bearer", token: "7f3c0d9e2b41a6c8d5e7f90a1b2c3d4e" },
  resourceTypes: ["Appointment"],
  subscription: { style: "backport-r4", payload: "id-only", topicUrl: "https://ehr.example.org/fhir/SubscriptionTopic/appointment-changed", heartbeatSeconds: 3600 },
});

const managedTag = { system: "https://fhir-notify.dev/fhir/CodeSystem/managed-by", code: "fhir-notify" };

describe("desired subscriptions", () => {
  it("subscribes a classic R4 rest-hook broadly, to every status that starts or stops a message", () => {
    const [appointment, dispense] = desiredSubscriptions("hapi-main", classic, endpoint, secretHeader);
    expect(appointment).toEqual({
      resourceType: "Subscription",
      meta: { tag: [managedTag, { system: "https://fhir-notify.dev/sid/subscription", code: "hapi-main.Appointment" }] },
      status: "requested",
      reason: "fhir-notify: Appointment changes for source hapi-main",
      criteria: "Appointment?status=proposed,pending,booked,arrived,fulfilled,cancelled,noshow,entered-in-error",
      channel: {
        extension: [{ url: "http://hapifhir.io/fhir/StructureDefinition/subscription-send-delete-messages", valueBoolean: true }],
        type: "rest-hook",
        endpoint,
        payload: "application/fhir+json",
        header: [secretHeader],
      },
    });
    expect(dispense?.criteria).toContain("MedicationDispense?status=");
    expect(dispense?.criteria).toContain("in-progress");
    expect(dispense?.criteria).toContain("cancelled");
  });

  it("leaves channel.payload out for an empty classic payload", () => {
    const empty = { ...classic, subscription: { ...classic.subscription, payload: "empty" as const } };
    expect(desiredSubscriptions("hapi-main", empty, endpoint, undefined)[0]?.channel).not.toHaveProperty("payload");
  });

  it("adds the Medplum secret extension when the source checks HMAC signatures", () => {
    const medplum = sourceConfigSchema.parse({ auth: { type: "hmac", secret: "q8Zr3vT0pL6wY2nB5kD9sH1x" }, resourceTypes: ["Appointment"], subscription: { style: "r4-rest-hook", payload: "full-resource" } });
    expect(desiredSubscriptions("medplum-prod", medplum, endpoint, undefined)[0]?.extension).toEqual([
      { url: "https://www.medplum.com/fhir/StructureDefinition/subscription-secret", valueString: "q8Zr3vT0pL6wY2nB5kD9sH1x" },
    ]);
  });

  it("builds a backport subscription with the profile, topic, filter, payload content and heartbeat", () => {
    const [sub] = desiredSubscriptions("ehr-topics", topics, endpoint, secretHeader);
    const base = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/";
    expect(sub).toMatchObject({
      meta: { profile: [`${base}backport-subscription`] },
      criteria: "https://ehr.example.org/fhir/SubscriptionTopic/appointment-changed",
      _criteria: { extension: [{ url: `${base}backport-filter-criteria`, valueString: expect.stringMatching(/^Appointment\?status=.*cancelled/) }] },
      channel: {
        extension: [{ url: `${base}backport-heartbeat-period`, valueUnsignedInt: 3600 }],
        type: "rest-hook",
        payload: "application/fhir+json",
        _payload: { extension: [{ url: `${base}backport-payload-content`, valueCode: "id-only" }] },
        header: [secretHeader],
      },
    });
  });

  it("manages nothing when the source has no subscription style", () => {
    expect(desiredSubscriptions("poll-only", sourceConfigSchema.parse({ auth: { type: "none" } }), endpoint, undefined)).toEqual([]);
  });

  it("refuses a channel header whose value Medplum would cut at a colon", () => {
    expect(() => desiredSubscriptions("hapi-main", classic, endpoint, "Authorization: Basic a:b")).toThrow(/channel header/);
  });
});

describe("sync", () => {
  it("creates what is missing, then changes nothing on a second run", async () => {
    const fhir = new FakeFhir();
    const desired = desiredSubscriptions("hapi-main", classic, endpoint, secretHeader);
    expect(await syncSubscriptions(fhir, desired)).toEqual({ created: 2, updated: 0, unchanged: 0, reactivated: 0 });
    expect(await syncSubscriptions(fhir, desired)).toEqual({ created: 0, updated: 0, unchanged: 2, reactivated: 0 });
    expect(fhir.all("Subscription")).toHaveLength(2);
  });

  it("updates only the subscription whose managed fields changed, such as a rotated secret", async () => {
    const fhir = new FakeFhir();
    await syncSubscriptions(fhir, desiredSubscriptions("hapi-main", classic, endpoint, secretHeader));
    const rotated = desiredSubscriptions("hapi-main", classic, endpoint, "Authorization: Bearer 0000000000000000rotated");
    expect(await syncSubscriptions(fhir, rotated)).toEqual({ created: 0, updated: 2, unchanged: 0, reactivated: 0 });
    expect(fhir.all("Subscription").map((s) => (s as Subscription).channel.header)).toEqual([
      ["Authorization: Bearer 0000000000000000rotated"],
      ["Authorization: Bearer 0000000000000000rotated"],
    ]);
  });

  it("does not count server-side status activation or added meta as a difference", async () => {
    const fhir = new FakeFhir();
    const desired = desiredSubscriptions("hapi-main", classic, endpoint, secretHeader);
    await syncSubscriptions(fhir, desired);
    for (const s of fhir.all("Subscription") as Subscription[]) fhir.put({ ...s, status: "active", meta: { ...s.meta, source: "#server" } });
    expect(await syncSubscriptions(fhir, desired)).toEqual({ created: 0, updated: 0, unchanged: 2, reactivated: 0 });
  });

  it("re-activates a subscription the server switched off, by setting it back to requested", async () => {
    const fhir = new FakeFhir();
    const desired = desiredSubscriptions("hapi-main", classic, endpoint, secretHeader);
    await syncSubscriptions(fhir, desired);
    const [first] = fhir.all("Subscription") as Subscription[];
    fhir.put({ ...first!, status: "error", error: "HTTP 503 from endpoint" });
    expect(await syncSubscriptions(fhir, desired)).toEqual({ created: 0, updated: 1, unchanged: 1, reactivated: 1 });
    expect((await fhir.read<Subscription>("Subscription", first!.id!))?.status).toBe("requested");
    expect(fhir.calls.filter((c) => c.startsWith("update"))).toEqual([`update Subscription/${first!.id}`]);
  });

  it("leaves other clients' subscriptions alone, even if the server ignores _tag", async () => {
    const foreign: Subscription = { resourceType: "Subscription", id: "theirs", status: "active", reason: "billing", criteria: "Appointment", channel: { type: "rest-hook", endpoint: "https://billing.example.org/hook" } };
    const fhir = new FakeFhir([foreign]);
    await syncSubscriptions(fhir, desiredSubscriptions("hapi-main", classic, endpoint, secretHeader));
    expect(await fhir.read<Subscription>("Subscription", "theirs")).toMatchObject({ reason: "billing", meta: { versionId: "1" } });
    expect((await listSubscriptions(fhir, { now: new Date(), activationGraceMs: 120_000 })).map((s) => s.criteria.split("?")[0])).toEqual(["Appointment", "MedicationDispense"]);
  });

  it("lists ours with status, error and endpoint for the operator", async () => {
    const fhir = new FakeFhir();
    await syncSubscriptions(fhir, desiredSubscriptions("hapi-main", { ...classic, resourceTypes: ["Appointment"] }, endpoint, secretHeader));
    const [sub] = fhir.all("Subscription") as Subscription[];
    fhir.put({ ...sub!, status: "off", error: "disabled after repeated failures" });
    const [listed] = await listSubscriptions(fhir, { now: new Date(), activationGraceMs: 120_000 });
    expect(listed).toEqual({ id: sub!.id, source: "hapi-main", criteria: sub!.criteria, status: "off", lastUpdated: expect.any(String), error: "disabled after repeated failures", endpoint, problem: "off" });
  });
});

describe("the status Subscriptions are created in", () => {
  const medplum = sourceConfigSchema.parse({ auth: { type: "bearer", token: "7f3c0d9e2b41a6c8d5e7f90a1b2c3d4e" }, subscription: { style: "r4-rest-hook", payload: "full-resource" } });

  it("is active for a Medplum server, which delivers only active ones and never activates", () => {
    expect(initialStatusFor(medplum, "medplum")).toBe("active");
    expect(desiredSubscriptions("medplum-prod", medplum, endpoint, secretHeader, initialStatusFor(medplum, "medplum"))[0]?.status).toBe("active");
    // Medplum's X-Signature HMAC gives the server away even without its CapabilityStatement.
    const hmac = sourceConfigSchema.parse({ auth: { type: "hmac", secret: "q8Zr3vT0pL6wY2nB5kD9sH1x" }, subscription: { style: "r4-rest-hook", payload: "full-resource" } });
    expect(initialStatusFor(hmac, undefined)).toBe("active");
  });

  it("is requested for servers that activate it themselves (HAPI), or when the server cannot be told", () => {
    expect(initialStatusFor(classic, "HAPI FHIR Server")).toBe("requested");
    expect(initialStatusFor(classic, undefined)).toBe("requested");
  });

  it("is what the source configures, whatever the server says it is", () => {
    const forced = sourceConfigSchema.parse({ ...medplum, subscription: { ...medplum.subscription, initialStatus: "requested" } });
    expect(initialStatusFor(forced, "medplum")).toBe("requested");
    expect(initialStatusFor(sourceConfigSchema.parse({ ...medplum, subscription: { ...medplum.subscription, initialStatus: "active" } }), "HAPI FHIR Server")).toBe("active");
  });

  it("moves one left requested to active on sync when active is wanted, and leaves an active one alone", async () => {
    const fhir = new FakeFhir();
    await syncSubscriptions(fhir, desiredSubscriptions("medplum-prod", { ...medplum, resourceTypes: ["Appointment"] }, endpoint, secretHeader, "requested"));
    const wanted = desiredSubscriptions("medplum-prod", { ...medplum, resourceTypes: ["Appointment"] }, endpoint, secretHeader, "active");
    expect(await syncSubscriptions(fhir, wanted)).toEqual({ created: 0, updated: 1, unchanged: 0, reactivated: 1 });
    expect((fhir.all("Subscription") as Subscription[]).map((s) => s.status)).toEqual(["active"]);
    expect(await syncSubscriptions(fhir, wanted)).toEqual({ created: 0, updated: 0, unchanged: 1, reactivated: 0 });
  });
});

describe("a Subscription that delivers nothing", () => {
  const now = new Date("2026-12-03T12:00:00.000Z");
  const at = (secondsAgo: number) => ({ lastUpdated: new Date(now.getTime() - secondsAgo * 1000).toISOString() });

  it("is one still requested after the activation grace, or in error or off", () => {
    const options = { now, activationGraceMs: 120_000 };
    expect(subscriptionProblem({ status: "requested", meta: at(30) }, options)).toBeUndefined();
    expect(subscriptionProblem({ status: "requested", meta: at(121) }, options)).toBe("not-activated");
    expect(subscriptionProblem({ status: "requested" }, options)).toBe("not-activated");
    expect(subscriptionProblem({ status: "error", meta: at(1) }, options)).toBe("error");
    expect(subscriptionProblem({ status: "off", meta: at(1) }, options)).toBe("off");
    expect(subscriptionProblem({ status: "active", meta: at(9999) }, options)).toBeUndefined();
  });
});
