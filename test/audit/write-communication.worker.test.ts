import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DelayedError, UnrecoverableError, type Job } from "bullmq";
import { Redis } from "ioredis";
import { http, HttpResponse } from "msw";
import { setupServer } from "msw/node";
import type { Communication } from "fhir/r4";
import { auditConfigSchema } from "../../src/audit/audit.config.js";
import { createDeliveryLocks, type DeliveryLocks } from "../../src/audit/delivery-lock.js";
import { writeCommunication } from "../../src/audit/write-communication.worker.js";
import type { StatusEvent } from "../../src/delivery/delivery-record.js";
import type { NotDoneReason } from "../../src/shared/not-done-reason.js";
import { createLedger, type Ledger } from "../../src/delivery/ledger.js";
import { createFhirClient } from "../../src/fhir/fhir.client.js";
import { fhirClientConfigSchema } from "../../src/fhir/fhir.config.js";
import { FhirError, type FhirPort } from "../../src/fhir/fhir.port.js";
import { createMetrics } from "../../src/shared/metrics.js";
import { FakeFhir } from "../fakes/fhir.fake.js";
import { captureLogs } from "../support/log-capture.js";
import { newRedisPrefix, testRedisUrl } from "../support/redis-prefix.js";
import { r4Errors } from "./r4-validation.js";

const options = auditConfigSchema.parse({});
const deliveryId = "dlv_hapi-main_appointment-booked_Appointment_apt-7781_3f9a2c1e0b7d4a55";
const fhirBase = "https://fhir.hospital.example.org/fhir";

let redis: Redis;
let prefix: string;
let cleanup: () => Promise<void>;
let ledger: Ledger;
let locks: DeliveryLocks;

beforeAll(() => {
  redis = new Redis(testRedisUrl, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  await redis.quit();
});
beforeEach(() => {
  ({ prefix, cleanup } = newRedisPrefix());
  ledger = createLedger(redis, prefix);
  locks = createDeliveryLocks(redis, prefix);
});
afterEach(async () => {
  await cleanup();
});

async function delivery(events: StatusEvent[] = [], fields: { reason?: NotDoneReason; deadLettered?: boolean } = {}): Promise<void> {
  await ledger.create({
    deliveryId,
    source: "hapi-main",
    ruleId: "appointment-booked",
    rulesHash: "9c1d2e3f4a5b6c7d",
    templateName: "appointment_confirmation_v1",
    category: "notification",
    resourceRef: "Appointment/apt-7781",
    resourceVersion: "3",
    patientRef: "Patient/pat-1001",
    senderRef: "Organization/hospital-main",
    renderedText: "Hello Alex, your appointment at Riverside Clinic is booked for Tuesday, March 11 at 8:30 AM.",
    createdAt: "2025-03-04T09:15:00.000Z",
    updatedAt: "2025-03-04T09:15:00.000Z",
    ...(fields.reason !== undefined ? { reason: fields.reason } : {}),
  });
  if (fields.deadLettered === true) await ledger.set(deliveryId, { deadLettered: true });
  for (const e of events) await ledger.append(deliveryId, e);
}

function worker(fhir: FhirPort) {
  const logs = captureLogs("debug");
  const metrics = createMetrics({ defaultMetrics: false });
  const run = writeCommunication({ fhir, ledger, options, log: logs.log, metrics, locks, random: () => 0 });
  const delayedTo: { timestamp: number; token: string | undefined }[] = [];
  const job = {
    id: "audit_job_1",
    data: { deliveryId },
    moveToDelayed: (timestamp: number, token?: string) => {
      delayedTo.push({ timestamp, token });
      return Promise.resolve();
    },
  } as unknown as Job;
  const writes = async () => Object.fromEntries((await metrics.communicationWrites.get()).values.map((v) => [String(v.labels.result), v.value]));
  return { run: () => run(job, "worker-token-1"), logs, writes, delayedTo };
}

const accepted: StatusEvent = { state: "accepted", at: "2025-03-04T09:15:07.000Z" };
const delivered: StatusEvent = { state: "delivered", at: "2025-03-04T09:15:11.000Z" };

describe("writing a delivery's Communication", () => {
  it("creates it once by conditional create, then updates it in place and skips writes that change nothing", async () => {
    const fhir = new FakeFhir();
    await delivery([accepted]);
    const w = worker(fhir);
    expect(await w.run()).toBe("created");
    await ledger.append(deliveryId, delivered);
    expect(await w.run()).toBe("updated");
    expect(await w.run()).toBe("unchanged");

    const [stored] = fhir.all("Communication") as Communication[];
    expect(fhir.all("Communication")).toHaveLength(1);
    expect(stored?.status).toBe("completed");
    expect(stored?.received).toBe("2025-03-04T09:15:11.000Z");
    expect(stored?.meta?.versionId).toBe("2");
    expect(r4Errors(stored!)).toEqual([]);
    expect((await ledger.get(deliveryId))?.communicationId).toBe(stored?.id);
    expect(await w.writes()).toEqual({ created: 1, updated: 1, unchanged: 1 });
  });

  it("adopts the Communication an earlier attempt created instead of making a second one", async () => {
    const fhir = new FakeFhir();
    await delivery([accepted]);
    expect(await worker(fhir).run()).toBe("created");
    // The ledger lost the id (the attempt crashed after the create): the key finds it again.
    await ledger.clear(deliveryId, "communicationId");
    await ledger.append(deliveryId, delivered);
    expect(await worker(fhir).run()).toBe("updated");
    expect(fhir.all("Communication")).toHaveLength(1);
  });

  it("reads, merges and retries once when the version moved on since its last write (412)", async () => {
    const fhir = new FakeFhir();
    await delivery([accepted]);
    await worker(fhir).run();
    await ledger.append(deliveryId, delivered);
    const calls = fhir.calls.length;
    // The If-Match update meets a concurrent writer's version; only then a read, and the second try lands.
    const original = fhir.update.bind(fhir);
    let conflicts = 1;
    fhir.update = (resource, opts) => {
      fhir.calls.push(`update ${opts?.ifMatch ?? "-"}`);
      return conflicts-- > 0 ? Promise.reject(new FhirError("FHIR update failed: HTTP 412", 412, true)) : original(resource, opts);
    };
    expect(await worker(fhir).run()).toBe("updated");
    expect(fhir.calls.slice(calls).filter((c) => !c.startsWith("update Communication"))).toEqual(['update W/"1"', "read Communication/fake-1", 'update W/"1"']);
    expect((fhir.all("Communication")[0] as Communication).status).toBe("completed");
  });

  it("recreates a Communication that was deleted on the server", async () => {
    const fhir = new FakeFhir();
    await delivery([accepted]);
    await worker(fhir).run();
    const first = fhir.all("Communication")[0]!;
    fhir.remove("Communication", first.id);
    await ledger.append(deliveryId, delivered);
    expect(await worker(fhir).run()).toBe("created");
    const again = fhir.all("Communication") as Communication[];
    expect(again).toHaveLength(1);
    expect(again[0]?.id).not.toBe(first.id);
    expect(again[0]?.status).toBe("completed");
    expect((await ledger.get(deliveryId))?.communicationId).toBe(again[0]?.id);
  });

  it("marks a delivery waiting in the dead-letter queue on-hold rather than in progress", async () => {
    const fhir = new FakeFhir();
    await delivery([], { deadLettered: true });
    await worker(fhir).run();
    const [c] = fhir.all("Communication") as Communication[];
    expect(c?.status).toBe("on-hold");
    expect(c?.statusReason?.text).toMatch(/dead-letter/);
    expect(r4Errors(c!)).toEqual([]);
  });

  it.each([
    ["no-template-for-language", "system-error", "No approved template exists for the patient's language"],
    ["expired", "recipient-unavailable", "WhatsApp did not confirm delivery before the message expired"],
    ["sender-halted", "system-error", "Sending was halted for the sending phone number"],
  ] as const)("explains a delivery not sent because of %s with %s", async (reason, code, text) => {
    const fhir = new FakeFhir();
    await delivery([{ state: "not-done", at: "2025-03-04T09:15:02.000Z" }], { reason });
    await worker(fhir).run();
    const [c] = fhir.all("Communication") as Communication[];
    expect(c?.status).toBe("not-done");
    expect(c?.statusReason).toEqual({ coding: [{ system: "http://terminology.hl7.org/CodeSystem/communication-not-done-reason", code }], text });
    expect(c).not.toHaveProperty("payload");
    expect(r4Errors(c!)).toEqual([]);
  });

  it("waits, without using an attempt, while another step of the same delivery holds its lock", async () => {
    const fhir = new FakeFhir();
    await delivery([accepted]);
    const other = await locks.acquire(deliveryId);
    const w = worker(fhir);
    const before = Date.now();
    await expect(w.run()).rejects.toBeInstanceOf(DelayedError);
    // Back to the delayed set with this worker's token (moveToDelayed skips the attempt count).
    expect(w.delayedTo).toHaveLength(1);
    expect(w.delayedTo[0]?.token).toBe("worker-token-1");
    expect(w.delayedTo[0]!.timestamp).toBeGreaterThanOrEqual(before + 200);
    expect(fhir.calls).toEqual([]);

    await other!.release();
    expect(await w.run()).toBe("created");
    // Released after the write: the next step gets the lock at once.
    const next = await locks.acquire(deliveryId);
    expect(next).toBeDefined();
    await next!.release();
  });

  it("leaves a missing delivery alone", async () => {
    const fhir = new FakeFhir();
    expect(await worker(fhir).run()).toBe("missing");
    expect(fhir.calls).toEqual([]);
  });
});

describe("a FHIR server that refuses the Communication", () => {
  const server = setupServer();
  beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
  afterEach(() => server.resetHandlers());
  afterAll(() => server.close());

  const client = () => createFhirClient(fhirClientConfigSchema.parse({ baseUrl: fhirBase, retries: 0 }), captureLogs().log);

  it("fails the job for good on 422, logs the issue codes but not the server's text, and counts it", async () => {
    // Servers often quote the offending content in diagnostics; that text must stay out of the logs.
    const outcome = {
      resourceType: "OperationOutcome",
      issue: [
        {
          severity: "error",
          code: "invalid",
          diagnostics: "Communication.payload[0].contentString: 'Hello Alex, your appointment at Riverside Clinic' rejected by profile",
          expression: ["Communication.payload[0].contentString"],
        },
      ],
    };
    let posts = 0;
    server.use(
      http.post(`${fhirBase}/Communication`, () => {
        posts++;
        return HttpResponse.json(outcome, { status: 422, headers: { "content-type": "application/fhir+json" } });
      }),
    );
    await delivery([accepted]);
    const w = worker(client());
    const err = await w.run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect((err as Error).message).toBe("FHIR write refused with status 422");
    expect(posts).toBe(1);
    expect(await w.writes()).toEqual({ failed: 1 });

    const line = w.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "FHIR server refused the Communication write");
    expect(line).toMatchObject({ status: 422, deliveryId, issues: [{ code: "invalid", expression: ["Communication.payload[0].contentString"] }] });
    expect(w.logs.text()).not.toMatch(/Alex|Riverside|rejected by profile/);
  });

  it("does not adopt a conditional-create match that lacks this delivery's identifier: no overwrite, retried later", async () => {
    // The server answered 200 with a Communication of another delivery (it ignored the
    // If-None-Exist criteria or mis-parsed the token search).
    const foreign: Communication = {
      resourceType: "Communication",
      id: "comm-5120",
      meta: { versionId: "4" },
      identifier: [{ system: options.identifierSystem, value: "dlv_hapi-main_appointment-booked_Appointment_apt-1002_a1b2c3d4e5f60718" }],
      status: "completed",
    };
    const seen: string[] = [];
    server.use(
      http.post(`${fhirBase}/Communication`, ({ request }) => {
        seen.push(`POST ${request.headers.get("if-none-exist") ?? ""}`);
        return HttpResponse.json(foreign, { status: 200, headers: { "content-type": "application/fhir+json", etag: 'W/"4"' } });
      }),
      http.put(`${fhirBase}/Communication/:id`, () => {
        seen.push("PUT");
        return HttpResponse.json(foreign);
      }),
    );
    await delivery([accepted]);
    const w = worker(client());
    const err = await w.run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FhirError);
    expect(err).not.toBeInstanceOf(UnrecoverableError);
    expect((err as FhirError).retryable).toBe(true);
    expect(seen).toEqual([`POST identifier=${encodeURIComponent(`${options.identifierSystem}|${deliveryId}`)}`]);
    expect((await ledger.get(deliveryId))?.communicationId).toBeUndefined();
    expect(await w.writes()).toEqual({ "foreign-match": 1 });
    expect(w.logs.text()).toMatch(/matched a Communication without this delivery's identifier/);
  });

  it("leaves a 503 to the queue's retries without counting it as failed", async () => {
    server.use(http.post(`${fhirBase}/Communication`, () => HttpResponse.json({ resourceType: "OperationOutcome", issue: [{ severity: "error", code: "transient" }] }, { status: 503 })));
    await delivery([accepted]);
    const w = worker(client());
    const err = await w.run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FhirError);
    expect(err).not.toBeInstanceOf(UnrecoverableError);
    expect((err as FhirError).retryable).toBe(true);
    expect(await w.writes()).toEqual({});
  });
});

describe("write-back with If-Match: one FHIR request per status step", () => {
  const server = setupServer();
  beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
  afterEach(() => server.resetHandlers());
  afterAll(() => server.close());

  const client = () => createFhirClient(fhirClientConfigSchema.parse({ baseUrl: fhirBase, retries: 0 }), captureLogs().log);
  const read: StatusEvent = { state: "read", at: "2025-03-04T09:16:40.000Z" };

  /**
   * A FHIR server holding Communications by version, over msw. `names` says where it names the
   * version: in meta.versionId and the ETag (most servers), only the ETag, or nowhere.
   */
  function versionedServer(names: "meta-and-etag" | "etag-only" | "none") {
    const requests: string[] = [];
    const versions: Communication[] = [];
    const current = () => versions[versions.length - 1];
    const answer = (c: Communication, status: number) => {
      const { meta, ...rest } = c;
      const body = names === "meta-and-etag" ? c : meta?.tag !== undefined ? { ...rest, meta: { tag: meta.tag } } : rest;
      const headers: Record<string, string> = { "content-type": "application/fhir+json" };
      if (names !== "none") headers.etag = `W/"${meta?.versionId ?? ""}"`;
      return HttpResponse.json(body, { status, headers });
    };
    const store = (c: Communication) => {
      const stored = { ...c, id: "comm-7781", meta: { ...c.meta, versionId: String(versions.length + 1), lastUpdated: "2025-03-04T09:20:00.000Z" } };
      versions.push(stored);
      return stored;
    };
    server.use(
      http.post(`${fhirBase}/Communication`, async ({ request }) => {
        requests.push("POST /Communication");
        const c = current();
        return c !== undefined ? answer(c, 200) : answer(store((await request.json()) as Communication), 201);
      }),
      http.get(`${fhirBase}/Communication/:id`, () => {
        requests.push("GET /Communication/comm-7781");
        const c = current();
        return c !== undefined ? answer(c, 200) : HttpResponse.json({ resourceType: "OperationOutcome", issue: [{ severity: "error", code: "not-found" }] }, { status: 404 });
      }),
      http.put(`${fhirBase}/Communication/:id`, async ({ request }) => {
        const ifMatch = request.headers.get("if-match");
        requests.push(`PUT /Communication/comm-7781 ${ifMatch ?? "-"}`);
        if (ifMatch !== null && ifMatch !== `W/"${current()?.meta?.versionId ?? ""}"`) {
          return HttpResponse.json({ resourceType: "OperationOutcome", issue: [{ severity: "error", code: "conflict" }] }, { status: 412 });
        }
        return answer(store((await request.json()) as Communication), 200);
      }),
    );
    /** Another system edits the Communication (a new version with its note). */
    const editedElsewhere = () => {
      const c = current()!;
      store({ ...c, note: [...(c.note ?? []), { text: "Patient called the front desk about this message" }] });
    };
    /** Another system adds a confidentiality label (a new version, nothing else changed). */
    const labelledElsewhere = () => {
      const c = current()!;
      store({ ...c, meta: { ...c.meta, security: [restricted] } });
    };
    return { requests, current, editedElsewhere, labelledElsewhere };
  }
  const restricted = { system: "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", code: "R", display: "restricted" };

  it("updates a status step with one PUT If-Match on the version it wrote last, no read (was GET + PUT)", async () => {
    const fhir = versionedServer("meta-and-etag");
    await delivery([accepted]);
    const w = worker(client());
    expect(await w.run()).toBe("created");
    expect(fhir.requests).toEqual(["POST /Communication"]);
    expect((await ledger.get(deliveryId))?.communicationVersion?.versionId).toBe("1");

    for (const [step, version] of [[delivered, "1"], [read, "2"]] as const) {
      fhir.requests.length = 0;
      await ledger.append(deliveryId, step);
      expect(await w.run()).toBe("updated");
      expect(fhir.requests).toEqual([`PUT /Communication/comm-7781 W/"${version}"`]);
    }
    expect(fhir.current()?.status).toBe("completed");
    expect(fhir.current()?.received).toBe("2025-03-04T09:15:11.000Z");
    expect((await ledger.get(deliveryId))?.communicationVersion?.versionId).toBe("3");
    expect(r4Errors(fhir.current()!)).toEqual([]);

    // The same step again (a duplicate job) sends nothing at all.
    fhir.requests.length = 0;
    expect(await w.run()).toBe("unchanged");
    expect(fhir.requests).toEqual([]);
  });

  it("takes the version from the ETag when the body carries no meta.versionId", async () => {
    const fhir = versionedServer("etag-only");
    await delivery([accepted]);
    const w = worker(client());
    await w.run();
    fhir.requests.length = 0;
    await ledger.append(deliveryId, delivered);
    expect(await w.run()).toBe("updated");
    expect(fhir.requests).toEqual(['PUT /Communication/comm-7781 W/"1"']);
  });

  it("after a 412 reads the current version, merges and retries once, keeping what the other writer added", async () => {
    const fhir = versionedServer("meta-and-etag");
    await delivery([accepted]);
    const w = worker(client());
    await w.run();
    fhir.editedElsewhere();
    fhir.requests.length = 0;
    await ledger.append(deliveryId, delivered);
    expect(await w.run()).toBe("updated");
    expect(fhir.requests).toEqual(['PUT /Communication/comm-7781 W/"1"', "GET /Communication/comm-7781", 'PUT /Communication/comm-7781 W/"2"']);
    expect(fhir.current()?.status).toBe("completed");
    expect(fhir.current()?.note).toEqual([{ text: "Patient called the front desk about this message" }]);

    // The server now holds more than our projection: the next step reads and merges rather than overwrite the note.
    fhir.requests.length = 0;
    await ledger.append(deliveryId, read);
    expect(await w.run()).toBe("updated");
    expect(fhir.requests).toEqual(["GET /Communication/comm-7781", 'PUT /Communication/comm-7781 W/"3"']);
    expect(fhir.current()?.note).toEqual([{ text: "Patient called the front desk about this message" }]);
  });

  it("never PUTs away a security label another system added: after it, every step reads and merges", async () => {
    const fhir = versionedServer("meta-and-etag");
    await delivery([accepted]);
    const w = worker(client());
    await w.run();
    fhir.labelledElsewhere();
    for (const step of [delivered, read]) {
      await ledger.append(deliveryId, step);
      expect(await w.run()).toBe("updated");
      expect(fhir.current()?.meta?.security).toEqual([restricted]);
    }
    expect(fhir.current()?.received).toBe("2025-03-04T09:15:11.000Z");
  });

  it("falls back to read-then-write on a server that names no version", async () => {
    const fhir = versionedServer("none");
    await delivery([accepted]);
    const w = worker(client());
    await w.run();
    fhir.requests.length = 0;
    await ledger.append(deliveryId, delivered);
    expect(await w.run()).toBe("updated");
    expect(fhir.requests).toEqual(["GET /Communication/comm-7781", "PUT /Communication/comm-7781 -"]);
    expect(fhir.current()?.status).toBe("completed");
  });
});
