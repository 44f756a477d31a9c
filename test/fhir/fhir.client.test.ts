import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { delay, http, HttpResponse } from "msw";
import { setupServer } from "msw/node";
import type { Appointment, Communication } from "fhir/r4";
import { FhirError } from "../../src/fhir/fhir.port.js";
import { appointment, base, buildClient, communication, fhirJsonHeaders, hapiOutcome, searchset } from "./fhir-test-kit.js";

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

async function caught(promise: Promise<unknown>): Promise<FhirError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FhirError);
  return err as FhirError;
}

/** Answers with each response in turn and counts requests; the last one repeats. */
function sequence(...responses: (() => Response)[]) {
  let n = 0;
  return {
    get count() {
      return n;
    },
    respond: () => (responses[Math.min(n++, responses.length - 1)] ?? (() => new Response(null, { status: 500 })))(),
  };
}

describe("reads", () => {
  it("reads the current version asking for FHIR JSON and sends no Authorization without auth", async () => {
    let seen: Headers | undefined;
    server.use(
      http.get(`${base}/Appointment/apt-7781`, ({ request }) => {
        seen = request.headers;
        return HttpResponse.json(appointment, { headers: fhirJsonHeaders });
      }),
    );
    const { client } = buildClient();
    await expect(client.read<Appointment>("Appointment", "apt-7781")).resolves.toEqual(appointment);
    expect(seen?.get("accept")).toBe("application/fhir+json");
    expect(seen?.has("authorization")).toBe(false);
  });

  it("answers undefined for a resource the server reports as not found or deleted", async () => {
    server.use(
      http.get(`${base}/Appointment/missing`, () => HttpResponse.json(hapiOutcome("not-found", "Resource Appointment/missing is not known"), { status: 404 })),
      http.get(`${base}/Appointment/deleted`, () => HttpResponse.json(hapiOutcome("deleted", "Resource was deleted at 2025-03-10"), { status: 410 })),
    );
    const { client, sleeps } = buildClient();
    await expect(client.read("Appointment", "missing")).resolves.toBeUndefined();
    await expect(client.read("Appointment", "deleted")).resolves.toBeUndefined();
    expect(sleeps).toEqual([]);
  });

  it("reads a specific version from the _history path and answers undefined when that version is unknown", async () => {
    server.use(
      http.get(`${base}/Appointment/apt-7781/_history/3`, () => HttpResponse.json(appointment)),
      http.get(`${base}/Appointment/apt-7781/_history/9`, () => new HttpResponse(null, { status: 404 })),
    );
    const { client } = buildClient();
    await expect(client.vread("Appointment", "apt-7781", "3")).resolves.toMatchObject({ meta: { versionId: "3" } });
    await expect(client.vread("Appointment", "apt-7781", "9")).resolves.toBeUndefined();
  });

  it("rejects an id that is not a FHIR id before any request is made", async () => {
    const { client, calls } = buildClient();
    const err = await caught(client.read("Appointment", "../Patient/pat-1021"));
    expect(err.retryable).toBe(false);
    expect(err.message).not.toContain("pat-1021");
    expect(calls).toEqual([]);
  });

  it("refuses a response whose resourceType is not the one asked for", async () => {
    server.use(http.get(`${base}/Appointment/apt-7781`, () => HttpResponse.json({ resourceType: "Patient", id: "apt-7781" })));
    const { client } = buildClient();
    const err = await caught(client.read("Appointment", "apt-7781"));
    expect(err).toMatchObject({ status: 200, retryable: false });
  });
});

describe("search and paging", () => {
  it("passes search parameters in the query string and returns the searchset Bundle", async () => {
    let query: URLSearchParams | undefined;
    server.use(
      http.get(`${base}/Appointment`, ({ request }) => {
        query = new URL(request.url).searchParams;
        return HttpResponse.json(searchset([appointment]));
      }),
    );
    const { client } = buildClient();
    const bundle = await client.search("Appointment", { status: "booked", date: "ge2025-03-13", _count: "50" });
    expect(bundle.entry?.[0]?.resource).toEqual(appointment);
    expect(Object.fromEntries(query ?? [])).toEqual({ status: "booked", date: "ge2025-03-13", _count: "50" });
  });

  it("follows a next link on the FHIR server's own origin", async () => {
    const next = `${base}?_getpages=0f3c&_getpagesoffset=50&_count=50&_bundletype=searchset`;
    server.use(http.get(base, ({ request }) => (new URL(request.url).searchParams.get("_getpages") === "0f3c" ? HttpResponse.json(searchset([])) : new HttpResponse(null, { status: 400 }))));
    const { client } = buildClient();
    await expect(client.fetchPage(next)).resolves.toMatchObject({ resourceType: "Bundle", type: "searchset" });
  });

  it("refuses a next link on another origin without sending anything there", async () => {
    let hits = 0;
    server.use(
      http.get("https://collector.example.net/*", () => {
        hits++;
        return HttpResponse.json(searchset([]));
      }),
    );
    const { client, calls } = buildClient({ auth: { type: "bearer", token: "static-token-1" } });
    const err = await caught(client.fetchPage("https://collector.example.net/fhir?page=2"));
    expect(err.retryable).toBe(false);
    expect(hits).toBe(0);
    expect(calls).toEqual([]);
    // Same host, different scheme or port is a different origin too.
    await caught(client.fetchPage("http://fhir.example.org/fhir?page=2"));
    await caught(client.fetchPage("https://fhir.example.org:8443/fhir?page=2"));
    expect(hits).toBe(0);
  });

  it("does not follow a redirect, so credentials cannot travel with it", async () => {
    let redirectedHits = 0;
    server.use(
      http.get(`${base}/Appointment/apt-7781`, () => new HttpResponse(null, { status: 302, headers: { location: "https://elsewhere.example.net/Appointment/apt-7781" } })),
      http.get("https://elsewhere.example.net/*", () => {
        redirectedHits++;
        return HttpResponse.json(appointment);
      }),
    );
    const { client } = buildClient({ auth: { type: "bearer", token: "static-token-1" } });
    const err = await caught(client.read("Appointment", "apt-7781"));
    expect(err).toMatchObject({ status: 302, retryable: false });
    expect(redirectedHits).toBe(0);
  });
});

describe("retries", () => {
  it("retries a 503 with exponential backoff and full jitter, then returns the resource", async () => {
    const answers = sequence(
      () => new HttpResponse(null, { status: 503 }),
      () => new HttpResponse(null, { status: 503 }),
      () => HttpResponse.json(appointment),
    );
    server.use(http.get(`${base}/Appointment/apt-7781`, answers.respond));
    const { client, sleeps } = buildClient();
    await expect(client.read("Appointment", "apt-7781")).resolves.toEqual(appointment);
    expect(answers.count).toBe(3);
    // random() = 0.5 of min(5000, 200·2^n)
    expect(sleeps).toEqual([100, 200]);
  });

  it("waits as long as a 429's Retry-After asks, in seconds or as an HTTP date", async () => {
    const answers = sequence(
      () => HttpResponse.json(hapiOutcome("throttled", "slow down"), { status: 429, headers: { "retry-after": "2" } }),
      () => new HttpResponse(null, { status: 429, headers: { "retry-after": "Wed, 12 Mar 2025 09:00:07 GMT" } }),
      () => HttpResponse.json(appointment),
    );
    server.use(http.get(`${base}/Appointment/apt-7781`, answers.respond));
    const { client, sleeps } = buildClient();
    await expect(client.read("Appointment", "apt-7781")).resolves.toEqual(appointment);
    expect(sleeps).toEqual([2000, 7000]);
  });

  it("does not wait out a Retry-After longer than 30 s inside the call but fails as retryable", async () => {
    const answers = sequence(() => new HttpResponse(null, { status: 429, headers: { "retry-after": "120" } }));
    server.use(http.get(`${base}/Appointment/apt-7781`, answers.respond));
    const { client, sleeps } = buildClient();
    const err = await caught(client.read("Appointment", "apt-7781"));
    expect(err).toMatchObject({ status: 429, retryable: true });
    expect(answers.count).toBe(1);
    expect(sleeps).toEqual([]);
  });

  it("gives up after the configured retries and reports a retryable error with the server's status", async () => {
    const answers = sequence(() => HttpResponse.json(hapiOutcome("transient", "database connection pool exhausted"), { status: 503 }));
    server.use(http.get(`${base}/Appointment/apt-7781`, answers.respond));
    const { client, sleeps } = buildClient({ retries: 2 });
    const err = await caught(client.read("Appointment", "apt-7781"));
    expect(err).toMatchObject({ status: 503, retryable: true });
    expect(err.outcome?.issue[0]?.code).toBe("transient");
    expect(answers.count).toBe(3);
    expect(sleeps).toHaveLength(2);
  });

  it.each([400, 403, 422])("does not retry a %i and reports it as permanent", async (status) => {
    const answers = sequence(() => HttpResponse.json(hapiOutcome("invalid", "bad request"), { status }));
    server.use(http.get(`${base}/Appointment`, answers.respond));
    const { client, sleeps } = buildClient();
    const err = await caught(client.search("Appointment", { status: "booked" }));
    expect(err).toMatchObject({ status, retryable: false });
    expect(answers.count).toBe(1);
    expect(sleeps).toEqual([]);
  });

  it("retries a network failure and reports it as retryable without a status when it persists", async () => {
    const answers = sequence(() => HttpResponse.error());
    server.use(http.get(`${base}/Appointment/apt-7781`, answers.respond));
    const { client, calls } = buildClient({ retries: 1 });
    const err = await caught(client.read("Appointment", "apt-7781"));
    expect(err).toMatchObject({ status: undefined, retryable: true });
    expect(answers.count).toBe(2);
    expect(calls.map((c) => c.status)).toEqual([undefined, undefined]);
  });

  it("aborts an attempt that outlives the timeout and reports it as retryable", async () => {
    server.use(
      http.get(`${base}/Appointment/apt-7781`, async () => {
        await delay("infinite");
        return HttpResponse.json(appointment);
      }),
    );
    const { client } = buildClient({ timeoutMs: 30, retries: 0 });
    const err = await caught(client.read("Appointment", "apt-7781"));
    expect(err).toMatchObject({ status: undefined, retryable: true });
    expect(err.message).toMatch(/timed out/);
  });
});

describe("conditional create", () => {
  const ifNoneExist = "identifier=https://fhir-notify.example.org/sid/notification-key|hapi-main.Appointment.apt-7781.1741858200.appointment_reminder";

  it("creates with If-None-Exist and reports created on 201", async () => {
    let seen: { headers: Headers; body: unknown } | undefined;
    server.use(
      http.post(`${base}/Communication`, async ({ request }) => {
        seen = { headers: request.headers, body: await request.json() };
        return HttpResponse.json({ ...communication, id: "com-4410", meta: { versionId: "1" } }, { status: 201, headers: { location: `${base}/Communication/com-4410/_history/1` } });
      }),
    );
    const { client } = buildClient();
    const result = await client.create(communication, { ifNoneExist });
    expect(result).toEqual({ created: true, resource: expect.objectContaining({ id: "com-4410" }) });
    expect(seen?.headers.get("if-none-exist")).toBe(ifNoneExist);
    expect(seen?.headers.get("content-type")).toBe("application/fhir+json");
    expect(seen?.headers.get("prefer")).toBe("return=representation");
    expect(seen?.body).toEqual(communication);
  });

  it("adopts the existing resource and reports not created on 200", async () => {
    server.use(http.post(`${base}/Communication`, () => HttpResponse.json({ ...communication, id: "com-4410", meta: { versionId: "2" } }, { status: 200 })));
    const { client } = buildClient();
    await expect(client.create(communication, { ifNoneExist })).resolves.toEqual({ created: false, resource: expect.objectContaining({ id: "com-4410" }) });
  });

  it("fails permanently on 412 because several matches already exist", async () => {
    const answers = sequence(() => HttpResponse.json(hapiOutcome("multiple-matches", "Failed to CREATE resource with match URL because this search matched 2 resources"), { status: 412 }));
    server.use(http.post(`${base}/Communication`, answers.respond));
    const { client } = buildClient();
    const err = await caught(client.create(communication, { ifNoneExist }));
    expect(err).toMatchObject({ status: 412, retryable: false });
    expect(err.outcome?.issue[0]?.code).toBe("multiple-matches");
    expect(answers.count).toBe(1);
  });

  it("reads the stored version back when the server answers 201 with only a Location", async () => {
    server.use(
      http.post(`${base}/Communication`, () => new HttpResponse(null, { status: 201, headers: { location: `${base}/Communication/com-4410/_history/1` } })),
      http.get(`${base}/Communication/com-4410/_history/1`, () => HttpResponse.json({ ...communication, id: "com-4410", meta: { versionId: "1" } })),
    );
    const { client } = buildClient();
    await expect(client.create(communication, { ifNoneExist })).resolves.toEqual({ created: true, resource: expect.objectContaining({ id: "com-4410" }) });
  });

  it("retries a conditional create after a 500 but a plain create only when the server said it did not process it", async () => {
    const conditional = sequence(
      () => new HttpResponse(null, { status: 500 }),
      () => HttpResponse.json({ ...communication, id: "com-1" }, { status: 201 }),
    );
    server.use(http.post(`${base}/Communication`, conditional.respond));
    const { client } = buildClient();
    await client.create(communication, { ifNoneExist });
    expect(conditional.count).toBe(2);

    const plain = sequence(() => new HttpResponse(null, { status: 500 }));
    server.use(http.post(`${base}/Communication`, plain.respond));
    const err = await caught(client.create(communication));
    expect(err).toMatchObject({ status: 500, retryable: true });
    expect(plain.count).toBe(1);

    const throttled = sequence(
      () => new HttpResponse(null, { status: 503 }),
      () => HttpResponse.json({ ...communication, id: "com-2" }, { status: 201 }),
    );
    server.use(http.post(`${base}/Communication`, throttled.respond));
    await expect(client.create(communication)).resolves.toMatchObject({ created: true });
    expect(throttled.count).toBe(2);
  });
});

describe("update with optimistic locking", () => {
  const stored: Communication & { id: string } = { ...communication, id: "com-4410", meta: { versionId: "2" } };

  it("sends If-Match as a weak ETag, also when given a bare versionId", async () => {
    const seen: (string | null)[] = [];
    server.use(
      http.put(`${base}/Communication/com-4410`, ({ request }) => {
        seen.push(request.headers.get("if-match"));
        return HttpResponse.json({ ...stored, meta: { versionId: "3" } });
      }),
    );
    const { client } = buildClient();
    await expect(client.update(stored, { ifMatch: 'W/"2"' })).resolves.toMatchObject({ meta: { versionId: "3" } });
    await client.update(stored, { ifMatch: "2" });
    expect(seen).toEqual(['W/"2"', 'W/"2"']);
  });

  it.each([412, 409])("reports a %i version conflict as a conflict a re-read can fix, without retrying the same request", async (status) => {
    const answers = sequence(() => HttpResponse.json(hapiOutcome("conflict", "Version 2 is not the most recent version of this resource"), { status }));
    server.use(http.put(`${base}/Communication/com-4410`, answers.respond));
    const { client, sleeps } = buildClient();
    const err = await caught(client.update(stored, { ifMatch: 'W/"2"' }));
    expect(err.isConflict).toBe(true);
    expect(err).toMatchObject({ status, retryable: true });
    expect(answers.count).toBe(1);
    expect(sleeps).toEqual([]);
  });
});

describe("errors", () => {
  it("surfaces the server's OperationOutcome codes but never its free text or the resource content", async () => {
    const echoed = "Maria Jansen";
    server.use(http.post(`${base}/Communication`, () => HttpResponse.json(hapiOutcome("processing", `Unknown element near '${echoed}'`), { status: 422 })));
    const { client } = buildClient();
    const withName: Communication = { ...communication, note: [{ text: `Call ${echoed} about her results` }] };
    const err = await caught(client.create(withName));
    expect(err.outcome).toEqual({
      resourceType: "OperationOutcome",
      issue: [{ severity: "error", code: "processing", details: { coding: [{ system: "https://hapifhir.io/fhir/CodeSystem/hapi-fhir-error-code", code: "HAPI-0450" }] }, expression: ["Communication.sent"] }],
    });
    expect(err.message).toBe("FHIR create failed: HTTP 422 (processing)");
    expect(JSON.stringify({ ...err, message: err.message })).not.toContain(echoed);
  });
});

describe("metrics hook", () => {
  it("reports each attempt with a constant op label, its status and a duration", async () => {
    const answers = sequence(
      () => new HttpResponse(null, { status: 503 }),
      () => HttpResponse.json(appointment),
    );
    server.use(http.get(`${base}/Appointment/apt-7781`, answers.respond));
    const { client, calls } = buildClient();
    await client.read("Appointment", "apt-7781");
    expect(calls.map(({ op, status }) => ({ op, status }))).toEqual([
      { op: "read", status: 503 },
      { op: "read", status: 200 },
    ]);
    expect(calls.every((c) => c.ms >= 0)).toBe(true);
  });

  it("still returns the resource when the metrics hook throws", async () => {
    server.use(http.get(`${base}/Appointment/apt-7781`, () => HttpResponse.json(appointment)));
    const { client } = buildClient({}, { onCall: () => { throw new Error("registry closed"); } });
    await expect(client.read("Appointment", "apt-7781")).resolves.toEqual(appointment);
  });
});

describe("checkReachable", () => {
  it("is true when the server returns its CapabilityStatement", async () => {
    server.use(http.get(`${base}/metadata`, () => HttpResponse.json({ resourceType: "CapabilityStatement", status: "active", kind: "instance", fhirVersion: "4.0.1", date: "2025-03-01", format: ["json"] })));
    const { client } = buildClient();
    await expect(client.checkReachable()).resolves.toBe(true);
  });

  it("is false, after a single attempt, when the server fails or cannot be reached", async () => {
    const failing = sequence(() => new HttpResponse(null, { status: 503 }));
    server.use(http.get(`${base}/metadata`, failing.respond));
    const { client, sleeps } = buildClient();
    await expect(client.checkReachable()).resolves.toBe(false);
    expect(failing.count).toBe(1);
    server.use(http.get(`${base}/metadata`, () => HttpResponse.error()));
    await expect(client.checkReachable()).resolves.toBe(false);
    expect(sleeps).toEqual([]);
  });
});
