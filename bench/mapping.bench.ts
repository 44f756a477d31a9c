import type { Bundle, FhirResource } from "fhir/r4";
import { toCloudApiRequest } from "../src/delivery/whatsapp/cloud-api.request.js";
import type { FhirPort } from "../src/fhir/fhir.port.js";
import { loadMappingSet } from "../src/mapping/load-rules.js";
import { createMapping, previousProjection, type Mapping, type PreviousProjection } from "../src/mapping/mapping.js";
import { mappingConfigSchema } from "../src/mapping/mapping.config.js";
import { manualClock } from "../src/shared/clock.js";
import { loadFixture } from "../test/fixtures/fhir/load-fixture.js";

export interface DecisionBenchResult {
  decisions: number;
  messages: number;
  elapsedMs: number;
  perSecond: number;
}

export interface BenchFixtures {
  /** Each change: the re-read resource and the projection of the version seen before it. */
  readonly changes: readonly { resource: FhirResource; previous: PreviousProjection | undefined }[];
  /** Serves the patient, consent and reference reads from memory, so only our code is measured. */
  readonly fhir: FhirPort;
  readonly now: Date;
}

/**
 * Decisions per second on one core: resource in → match (FHIRPath) → prepare (recipient,
 * language, consent, slots, leak guard) → Cloud API request out. Target ≥ 20,000/s.
 */
export async function benchDecisions(mapping: Mapping, fixtures: BenchFixtures, iterations: number): Promise<DecisionBenchResult> {
  let messages = 0;
  const run = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const change = fixtures.changes[i % fixtures.changes.length];
      if (change === undefined) throw new Error("no fixtures");
      for (const m of mapping.match(change.resource, change.previous, fixtures.now)) {
        if (m.action !== "send") continue;
        const prepared = await mapping.prepare(m.ruleId, change.resource, fixtures.fhir, `bench_${i}`);
        if (!prepared.ok) throw new Error(`bench fixture was not sendable: ${prepared.reason}`);
        if (toCloudApiRequest(prepared.message).template.components.length > 0) messages++;
      }
    }
  };
  await run(Math.min(2_000, iterations)); // warm up the JIT and the formatter cache
  messages = 0;
  const started = performance.now();
  await run(iterations);
  const elapsedMs = performance.now() - started;
  return { decisions: iterations, messages, elapsedMs: Math.round(elapsedMs), perSecond: Math.round((iterations / elapsedMs) * 1000) };
}

/** The shipped rules with a two-site config and a mix of the five default use cases. */
export function defaultBenchSetup(): { mapping: Mapping; fixtures: BenchFixtures } {
  const now = new Date("2026-03-02T16:00:00Z");
  const site = mappingConfigSchema.parse({
    organization: { displayName: "Riverside Health" },
    portal: { url: "https://portal.example.org", tokenSecret: "bench-secret-0123456789" },
    locations: {
      "Location/loc-riverside": { label: "Riverside Clinic, 12 Main St", timeZone: "America/Chicago" },
      "Location/loc-madrid": { label: "Clínica Retiro, calle de Alcalá 120", timeZone: "Europe/Madrid" },
    },
    pharmacies: { "Location/loc-pharmacy-main": { name: "Riverside Pharmacy", hours: "Mon-Sat 9 AM - 7 PM" } },
  });
  const mapping = createMapping(loadMappingSet("mappings"), site, manualClock(now));

  const store = new Map<string, FhirResource>();
  for (const r of [
    loadFixture("Patient", "jordan-rivera-en"),
    loadFixture("Patient", "lucia-garcia-es"),
    loadFixture("Location", "loc-riverside"),
    loadFixture("Location", "loc-madrid"),
  ]) {
    store.set(`${r.resourceType}/${r.id ?? ""}`, r);
  }
  const consents = new Map<string, Bundle>(
    (["pat-1001", "pat-2002"] as const).map((id) => {
      const consent = loadFixture("Consent", id === "pat-1001" ? "whatsapp-permit-pat-1001" : "whatsapp-permit-pat-2002");
      return [`Patient/${id}`, { resourceType: "Bundle", type: "searchset", entry: [{ resource: consent }] }];
    }),
  );
  const fhir: FhirPort = {
    baseUrl: "memory:",
    read: <T extends FhirResource>(type: T["resourceType"], id: string) => Promise.resolve(store.get(`${type}/${id}`) as T | undefined),
    vread: () => Promise.resolve(undefined),
    search: (_type, params) => Promise.resolve(consents.get(params.patient ?? "") ?? { resourceType: "Bundle", type: "searchset" }),
    fetchPage: () => Promise.reject(new Error("not used")),
    create: () => Promise.reject(new Error("not used")),
    update: () => Promise.reject(new Error("not used")),
  };

  const changes: BenchFixtures["changes"][number][] = [];
  const en = loadFixture("Appointment", "booked-en-chicago");
  const es = loadFixture("Appointment", "booked-es-madrid");
  const dispense = loadFixture("MedicationDispense", "ready-for-pickup");
  const report = loadFixture("DiagnosticReport", "final-viral-load");
  const preliminary = previousProjection(loadFixture("DiagnosticReport", "preliminary-viral-load"));
  for (let i = 0; i < 500; i++) {
    const start = new Date(Date.parse("2026-03-10T14:30:00Z") + (i % 48) * 1_800_000).toISOString();
    changes.push({ resource: { ...en, id: `apt-en-${i}`, start }, previous: undefined });
    changes.push({ resource: { ...es, id: `apt-es-${i}` }, previous: { resourceType: "Appointment", status: "proposed" } });
    changes.push({ resource: { ...dispense, id: `md-${i}` }, previous: { resourceType: "MedicationDispense", status: "preparation" } });
    changes.push({ resource: { ...report, id: `dr-${i}` }, previous: preliminary });
  }
  return { mapping, fixtures: { changes, fhir, now } };
}

/** Convenience for bench/run.ts: the default setup, n decisions. */
export async function benchMapping(n: number): Promise<DecisionBenchResult> {
  const { mapping, fixtures } = defaultBenchSetup();
  return benchDecisions(mapping, fixtures, Math.max(1, Math.floor(n)));
}

if (import.meta.url === `file://${process.argv[1] ?? ""}`) {
  const result = await benchMapping(Number(process.argv[2] ?? 50_000));
  console.log(`mapping: ${result.perSecond} decisions/s (${result.decisions} decisions, ${result.messages} messages, ${result.elapsedMs} ms)`);
}
