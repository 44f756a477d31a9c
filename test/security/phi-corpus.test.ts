import type { Appointment, Bundle, Communication, DiagnosticReport, FhirResource, MedicationDispense, MedicationRequest, Patient } from "fhir/r4";
import { readdirSync, readFileSync } from "node:fs";
import { Redis } from "ioredis";
import { parse } from "yaml";
import { describe, expect, it, onTestFinished } from "vitest";
import { buildStatusWebhook, signWebhook, startFakeGraphApi, type ApprovedTemplate, type StatusSpec } from "../fakes/graph-api.server.js";
import { startTestService } from "../support/start-test-service.js";
import { waitFor } from "../support/wait-for.js";
import { startFaultProxy } from "../reliability/fault-proxy.js";

/**
 * A corpus of realistic R4 resources with a sentinel in every clinical and identifying field, run
 * end to end (sandbox FHIR → rest-hook → queues → live Cloud API client → fake Graph API → status
 * webhooks → Communication). No sentinel may appear in anything that leaves the process or is kept
 * for operators: outbound WhatsApp requests, logs, metrics, error bodies, admin views, Redis.
 */

// Distinct, greppable, and unlike anything the code could produce by itself.
const S = {
  apptReason: "ZQXREASONHIVCLINIC",
  apptReasonCode: "ZQXREASONCODE",
  apptService: "ZQXSERVICEONCOLOGY",
  apptServiceCode: "ZQXSERVICECODE",
  apptType: "ZQXAPPTTYPE",
  apptSpecialty: "ZQXSPECIALTY",
  apptDescription: "ZQXDESCRIPTIONBIOPSY",
  apptComment: "ZQXCOMMENTPSYCH",
  apptInstruction: "ZQXINSTRUCTIONFASTING",
  apptSupporting: "ZQXSUPPORTINGINFO",
  medText: "ZQXMEDTEXTSERTRALINE",
  medCode: "ZQXMEDCODE312940",
  medDisplay: "ZQXMEDDISPLAYANTIDEPRESSANT",
  medReason: "ZQXMEDREASONDEPRESSION",
  medNote: "ZQXMEDNOTETITRATE",
  medDosage: "ZQXDOSAGEEVERYMORNING",
  medPatientInstruction: "ZQXDOSAGEPATIENTINSTRUCTION",
  dispenseNote: "ZQXDISPENSENOTESEROTONIN",
  dispenseDosage: "ZQXDISPENSEDOSAGE",
  dispenseSubjectDisplay: "ZQXSUBJECTDISPLAYNAME",
  reportCode: "ZQXREPORTCODE25836",
  reportCodeText: "ZQXREPORTHIVVIRALLOAD",
  reportConclusion: "ZQXCONCLUSIONDETECTED",
  reportConclusionCode: "ZQXCONCLUSIONCODE",
  reportIdentifier: "ZQXLABACCESSION",
  reportResultDisplay: "ZQXRESULTDISPLAY",
  reportFormTitle: "ZQXPRESENTEDFORMTITLE",
  family: "Zqxfamilyname",
  birthDate: "1931-07-19",
  addressLine: "ZQXADDRESSLINE 7",
  city: "Zqxcity",
  postalCode: "ZQX-99",
  mrn: "ZQXMRN0042",
  ssn: "999-ZQX-1234",
  email: "zqxmail@example.org",
  nameText: "ZQXNAMETEXT",
};
const sentinels = Object.values(S);

const secrets = {
  accessToken: "EAAG-phi-corpus-access-token-zqx",
  appSecret: "phi-corpus-app-secret-zqx",
  adminToken: "phi-corpus-admin-token-zqx-0123",
};

function findSentinels(haystack: string): string[] {
  return sentinels.filter((s) => haystack.includes(s));
}

describe("PHI never leaves through messages, logs, metrics, error bodies, admin views or Redis", () => {
  it("a corpus with a sentinel in every clinical field produces messages and audit records free of all of them", { timeout: 60_000 }, async () => {
    const graph = await startFakeGraphApi({ accessToken: secrets.accessToken, templates: approvedProjectTemplates() });
    onTestFinished(() => graph.stop());
    // A recording proxy keeps the exact bytes of every outbound WhatsApp request.
    const wire = await startFaultProxy(graph.url);
    onTestFinished(() => wire.stop());

    const service = await startTestService({
      config: {
        whatsapp: { phoneNumberId: graph.phoneNumberId, accessToken: secrets.accessToken, apiBase: wire.url, appSecret: secrets.appSecret },
        admin: { token: secrets.adminToken },
        // Three messages to one patient: Meta's pair limit is one per 6 s; a second keeps the test short.
        delivery: { rateLimits: { perRecipientSeconds: 1 } },
        mapping: {
          consent: { mode: "none" },
          locations: { "Location/phi-clinic": { label: "Riverside Clinic", timeZone: "America/New_York" } },
          pharmacies: { "Location/phi-pharmacy": { name: "Main Street Pharmacy", hours: "9am to 6pm" } },
        },
      },
    });
    const fhirBase = service.fhirBaseUrl;
    const hookToken = (service.sources.sandbox!.auth as { token: string }).token;
    const fhir = async <T extends FhirResource>(method: string, path: string, body?: FhirResource): Promise<T> => {
      const res = await fetch(`${fhirBase}/${path}`, { method, headers: { "content-type": "application/fhir+json" }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${await res.text()}`);
      return (await res.json()) as T;
    };

    await fhir("PUT", "Location/phi-clinic", { resourceType: "Location", id: "phi-clinic", status: "active", name: "Riverside Clinic" });
    await fhir("PUT", "Location/phi-pharmacy", { resourceType: "Location", id: "phi-pharmacy", status: "active", name: "Main Street Pharmacy" });
    const patient: Patient = {
      resourceType: "Patient",
      id: "phi-pat",
      active: true,
      identifier: [
        { type: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/v2-0203", code: "MR" }] }, system: "urn:oid:2.16.840.1.113883.19.5", value: S.mrn },
        { system: "http://hl7.org/fhir/sid/us-ssn", value: S.ssn },
      ],
      name: [{ use: "official", text: S.nameText, given: ["Alex"], family: S.family }],
      telecom: [
        { system: "phone", value: "+12025550177", use: "mobile", rank: 1 },
        { system: "email", value: S.email, use: "home" },
      ],
      gender: "female",
      birthDate: S.birthDate,
      address: [{ use: "home", line: [S.addressLine], city: S.city, postalCode: S.postalCode, country: "US" }],
      communication: [{ language: { coding: [{ system: "urn:ietf:bcp:47", code: "en-US" }] }, preferred: true }],
    };
    await fhir("PUT", "Patient/phi-pat", patient);

    const start = new Date(Date.now() + 30 * 3600_000);
    start.setUTCMinutes(30, 0, 0);
    const appointment: Appointment = {
      resourceType: "Appointment",
      status: "booked",
      serviceType: [{ coding: [{ system: "http://example.org/service", code: S.apptServiceCode, display: S.apptService }], text: S.apptService }],
      specialty: [{ text: S.apptSpecialty }],
      appointmentType: { text: S.apptType },
      reasonCode: [{ coding: [{ system: "http://snomed.info/sct", code: S.apptReasonCode, display: S.apptReason }], text: S.apptReason }],
      description: S.apptDescription,
      comment: S.apptComment,
      patientInstruction: S.apptInstruction,
      supportingInformation: [{ display: S.apptSupporting }],
      start: start.toISOString(),
      end: new Date(start.getTime() + 30 * 60_000).toISOString(),
      participant: [
        { actor: { reference: "Patient/phi-pat", display: `Alex ${S.family}` }, status: "accepted" },
        { actor: { reference: "Location/phi-clinic" }, status: "accepted" },
      ],
    };
    const medicationConcept = { coding: [{ system: "http://www.nlm.nih.gov/research/umls/rxnorm", code: S.medCode, display: S.medDisplay }], text: S.medText };
    const request = await fhir<MedicationRequest & { id: string }>("POST", "MedicationRequest", {
      resourceType: "MedicationRequest",
      status: "active",
      intent: "order",
      medicationCodeableConcept: medicationConcept,
      subject: { reference: "Patient/phi-pat", display: S.dispenseSubjectDisplay },
      reasonCode: [{ text: S.medReason }],
      note: [{ text: S.medNote }],
      dosageInstruction: [{ text: S.medDosage, patientInstruction: S.medPatientInstruction }],
    });
    const dispense: MedicationDispense = {
      resourceType: "MedicationDispense",
      status: "in-progress",
      medicationCodeableConcept: medicationConcept,
      subject: { reference: "Patient/phi-pat", display: S.dispenseSubjectDisplay },
      authorizingPrescription: [{ reference: `MedicationRequest/${request.id}` }],
      location: { reference: "Location/phi-pharmacy" },
      note: [{ text: S.dispenseNote }],
      dosageInstruction: [{ text: S.dispenseDosage, patientInstruction: S.medPatientInstruction }],
    };
    const report: DiagnosticReport = {
      resourceType: "DiagnosticReport",
      identifier: [{ system: "urn:oid:2.16.840.1.113883.19.5.7", value: S.reportIdentifier }],
      status: "final",
      category: [{ coding: [{ system: "http://terminology.hl7.org/CodeSystem/v2-0074", code: "LAB" }] }],
      code: { coding: [{ system: "http://loinc.org", code: S.reportCode, display: S.reportCodeText }], text: S.reportCodeText },
      subject: { reference: "Patient/phi-pat" },
      issued: new Date().toISOString(),
      result: [{ reference: "Observation/obs-phi", display: S.reportResultDisplay }],
      conclusion: S.reportConclusion,
      conclusionCode: [{ coding: [{ system: "http://snomed.info/sct", code: S.reportConclusionCode, display: S.reportConclusion }] }],
      presentedForm: [{ contentType: "application/pdf", title: S.reportFormTitle }],
    };
    const corpus: FhirResource[] = [patient, appointment, request, dispense, report];
    const stored = [
      await fhir("GET", "Patient/phi-pat"),
      request,
      await fhir("POST", "Appointment", appointment),
      await fhir("POST", "MedicationDispense", dispense),
      await fhir("POST", "DiagnosticReport", report),
    ];
    // The control: the FHIR server kept every sentinel, so any copy of them would be found below.
    expect(findSentinels(JSON.stringify(stored))).toEqual(sentinels);

    // Three messages: booking confirmation, pickup notice, portal notice.
    await waitFor("three messages at the fake Graph API", () => graph.records.length >= 3 || undefined, 20_000);
    expect(graph.records.map((r) => r.template).sort()).toEqual(["appointment_confirmation_v1", "pharmacy_pickup_ready_v1", "portal_document_available_v1"]);

    // Meta reports back: delivered and read for two, a failure for the third.
    const at = Math.floor(Date.now() / 1000);
    const statuses = graph.records.flatMap((r, i): StatusSpec[] =>
      i === 2
        ? [{ wamid: r.wamid, status: "failed", timestamp: at, recipientId: r.to, errorCode: 131026, ...(r.callbackData !== undefined ? { callbackData: r.callbackData } : {}) }]
        : (["delivered", "read"] as const).map((status, k) => ({ wamid: r.wamid, status, timestamp: at + k, recipientId: r.to, ...(r.callbackData !== undefined ? { callbackData: r.callbackData } : {}) })),
    );
    const webhook = buildStatusWebhook({ phoneNumberId: graph.phoneNumberId, statuses });
    expect((await fetch(`${service.url}/hooks/whatsapp`, { method: "POST", headers: { "content-type": "application/json", "x-hub-signature-256": signWebhook(webhook, secrets.appSecret) }, body: webhook })).status).toBe(200);

    const communications = await waitFor(
      "the audit trail to reflect the statuses",
      async () => {
        const res = await fetch(`${fhirBase}/Communication?subject=Patient/phi-pat&_count=100`);
        const bundle = (await res.json()) as Bundle;
        const all = (bundle.entry ?? []).map((e) => e.resource as Communication);
        const done = all.filter((c) => c.status === "completed").length >= 2 && all.some((c) => c.status === "entered-in-error" || c.status === "not-done" || c.statusReason !== undefined);
        return done ? all : undefined;
      },
      20_000,
    );

    // Error bodies: our routes refusing the corpus in every way they can.
    const errorBodies: string[] = [];
    const collect = async (res: Response, what: string) => {
      expect(res.status, what).toBeGreaterThanOrEqual(400);
      errorBodies.push(`${what}: ${await res.text()}`);
    };
    const admin = { authorization: `Bearer ${secrets.adminToken}`, "content-type": "application/json" };
    const hook = { authorization: `Bearer ${hookToken}`, "content-type": "application/fhir+json" };
    for (const resource of corpus) {
      const body = JSON.stringify(resource);
      await collect(await service.app.request(`/hooks/fhir/sandbox/${resource.resourceType}/not-this-id`, { method: "PUT", headers: hook, body: JSON.stringify({ ...resource, id: "another-id" }) }), "id mismatch");
      await collect(await service.app.request(`/hooks/fhir/sandbox/Observation/x1`, { method: "PUT", headers: hook, body }), "type mismatch");
      await collect(await service.app.request(`/hooks/fhir/sandbox`, { method: "POST", headers: { ...hook, "content-type": "text/plain" }, body }), "content type");
      await collect(await service.app.request(`/hooks/fhir/sandbox`, { method: "POST", headers: hook, body: body.slice(0, -3) }), "truncated JSON");
      await collect(await service.app.request(`/hooks/fhir/sandbox`, { method: "POST", headers: { ...hook, authorization: "Bearer wrong-token-0123456789" }, body }), "wrong token");
      await collect(await service.app.request(`/hooks/fhir/sandbox`, { method: "POST", headers: hook, body: JSON.stringify({ ...resource, id: `${S.mrn}/..` }) }), "bad id");
      await collect(await service.app.request("/admin/preview", { method: "POST", headers: admin, body: JSON.stringify({ ...resource, resourceType: `1${S.medText}` }) }), "preview bad type");
      await collect(await service.app.request("/admin/preview", { method: "POST", headers: admin, body: body.slice(0, -2) }), "preview truncated");
      await collect(await service.app.request("/admin/dlq/replay", { method: "POST", headers: admin, body: JSON.stringify({ ids: [S.mrn], extra: resource }) }), "replay with a resource");
      await collect(await service.app.request(`/admin/notifications/${encodeURIComponent(S.mrn)}`, { headers: admin }), "unknown notification");
      await collect(await service.app.request("/hooks/whatsapp", { method: "POST", headers: { "content-type": "application/json", "x-hub-signature-256": signWebhook(`${body} `, secrets.appSecret) }, body }), "webhook replayed signature");
    }

    // Operator views that are meant to be safe to show.
    const views: string[] = [];
    for (const path of ["/admin/notifications", "/admin/dlq", "/admin/sender"]) views.push(await (await service.app.request(path, { headers: admin })).text());
    // Preview explains a decision for an operator; it must not echo the resource either.
    for (const resource of corpus) {
      const res = await service.app.request("/admin/preview", { method: "POST", headers: admin, body: JSON.stringify(resource) });
      expect(res.status).toBe(200);
      views.push(await res.text());
    }
    const recent = (await (await service.app.request("/admin/notifications", { headers: admin })).json()) as { notifications: { deliveryId: string }[] };
    for (const n of recent.notifications) views.push(await (await service.app.request(`/admin/notifications/${n.deliveryId}`, { headers: admin })).text());
    const metrics = await (await service.app.request("/metrics")).text();

    const redisDump = await dumpPrefix(service.config.redis.url!, service.config.redis.prefix);
    const outbound = wire.requests.map((r) => `${r.method} ${r.path} ${r.body}`).join("\n");
    const logs = service.logs.text();

    const leaks: Record<string, string[]> = {
      "outbound WhatsApp requests": findSentinels(outbound),
      "fake Graph records": findSentinels(JSON.stringify(graph.records)),
      logs: findSentinels(logs),
      metrics: findSentinels(metrics),
      "error bodies": findSentinels(errorBodies.join("\n")),
      "admin views": findSentinels(views.join("\n")),
      "Communication resources": findSentinels(JSON.stringify(communications)),
      "Redis (job data, ledger)": findSentinels(redisDump),
    };
    expect(leaks).toEqual(Object.fromEntries(Object.keys(leaks).map((k) => [k, []])));
    expect(outbound.length).toBeGreaterThan(0);
    expect(errorBodies).toHaveLength(corpus.length * 11);

    // The messages did go out, to the right number, and the patient's phone is not in the logs.
    expect(graph.records.every((r) => r.to === "12025550177")).toBe(true);
    expect(logs).not.toContain("2025550177");
    expect(metrics).not.toContain("2025550177");

    // Secrets: never in logs, metrics or error bodies.
    for (const secret of [...Object.values(secrets), hookToken]) {
      expect(logs, "a secret in the logs").not.toContain(secret);
      expect(metrics, "a secret in the metrics").not.toContain(secret);
      expect(errorBodies.join("\n"), "a secret in an error body").not.toContain(secret);
    }
  });
});

/** The project's own templates (mappings/templates), as Meta holds them once approved. */
/** A shipped URL button gives a path under the site's portal (mapping.portal.url); Meta holds the whole URL. */
function urlOf(b: { type: "QUICK_REPLY" | "URL"; url?: string; path?: string }): { type: "QUICK_REPLY" | "URL"; url?: string } {
  const url = b.url ?? (b.path !== undefined ? `https://portal.example.org${b.path}` : undefined);
  return { type: b.type, ...(url !== undefined ? { url } : {}) };
}

function approvedProjectTemplates(): ApprovedTemplate[] {
  const dir = new URL("../../mappings/templates/", import.meta.url);
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) => {
      const t = parse(readFileSync(new URL(f, dir), "utf8")) as { name: string; languages: Record<string, { body: string; footer?: string; buttons?: { type: "QUICK_REPLY" | "URL"; url?: string; path?: string }[] }> };
      return Object.entries(t.languages).map(([language, l]): ApprovedTemplate => ({
        name: t.name,
        language,
        components: [
          { type: "BODY", text: l.body },
          ...(l.footer !== undefined ? [{ type: "FOOTER" as const, text: l.footer }] : []),
          ...(l.buttons !== undefined ? [{ type: "BUTTONS" as const, buttons: l.buttons.map((b) => urlOf(b)) }] : []),
        ],
      }));
    });
}

/** Every value under a BullMQ prefix, as text: job data, ledger hashes, status logs, indexes. */
async function dumpPrefix(url: string, prefix: string): Promise<string> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const out: string[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 500);
      for (const key of keys) {
        const type = await redis.type(key);
        out.push(key);
        if (type === "string") out.push((await redis.get(key)) ?? "");
        else if (type === "hash") out.push(JSON.stringify(await redis.hgetall(key)));
        else if (type === "list") out.push(...(await redis.lrange(key, 0, -1)));
        else if (type === "set") out.push(...(await redis.smembers(key)));
        else if (type === "zset") out.push(...(await redis.zrange(key, 0, -1)));
        else if (type === "stream") out.push(JSON.stringify(await redis.xrange(key, "-", "+")));
      }
      cursor = next;
    } while (cursor !== "0");
    return out.join("\n");
  } finally {
    await redis.quit();
  }
}
