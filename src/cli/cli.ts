import { readFileSync } from "node:fs";
import { Redis } from "ioredis";
import type { FhirResource } from "fhir/r4";
import { loadConfig } from "../config/load-config.js";
import { ConfigError } from "../shared/config-error.js";
import type { Config } from "../config/config.schema.js";
import { createLogger } from "../shared/logger.js";
import { systemClock } from "../shared/clock.js";
import { MappingError } from "../mapping/load-rules.js";
import { loadSiteMapping } from "../mapping/mapping.js";
import { previewResource } from "../delivery/preview.js";
import { createFhirClient, type FhirClient } from "../fhir/fhir.client.js";
import type { FhirPort } from "../fhir/fhir.port.js";
import { FhirError } from "../fhir/fhir.port.js";
import { desiredSubscriptions, initialStatusFor, listSubscriptions, syncSubscriptions, verifySubscriptions } from "../intake/subscriptions.js";
import type { SourceConfig } from "../intake/source.config.js";
import { createQueues } from "../delivery/queues.js";
import { createLedger } from "../delivery/ledger.js";
import { createDeadLetters } from "../delivery/dead-letter.js";
import { createSenderState } from "../delivery/sender-state.js";
import { createMetrics } from "../shared/metrics.js";
import { answersPing } from "../redis/embedded-redis.js";
import { inlineFhir } from "./inline-fhir.js";
import { templatesCompare } from "./templates-compare.js";
import { serve } from "../main.js";

const usage = `usage: fhir-notify <command>
  serve [--role api|worker|all]     run the service (npm start runs --role all)
  mappings check [dir]              validate the rules in mappings/ (or dir)
  preview <resource.json>           which rules fire for a resource and the exact message, or why none
  subscriptions sync                create/update this service's Subscriptions on the FHIR server(s)
  subscriptions list                show our Subscriptions and their server-side status
  templates compare                 compare the templates the rules send with Meta's (exit 1 on a mismatch)
  dlq list                          show jobs in the dead-letter queue
  dlq replay [id...]                retry dead-lettered jobs (all, or the given ids) and resume a halted sender`;

class CliError extends Error {}

/** One line on stderr, exit 1: what is wrong and where. */
function fail(message: string): never {
  process.stderr.write(`fhir-notify: ${message}\n`);
  process.exit(1);
}

function out(value: unknown): void {
  process.stdout.write(`${typeof value === "string" ? value : JSON.stringify(value, null, 2)}\n`);
}

function fhirFor(config: Config): FhirClient {
  if (config.fhir === undefined) throw new CliError("FHIR_BASE_URL is not set (the embedded sandbox only exists inside a running service)");
  return createFhirClient(config.fhir, createLogger("silent"));
}

function secretHeaderOf(source: SourceConfig): string | undefined {
  switch (source.auth.type) {
    case "bearer":
      return `Authorization: Bearer ${source.auth.token}`;
    case "header":
      return `${source.auth.name}: ${source.auth.value}`;
    case "hmac":
    case "none":
      return undefined;
  }
}

function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw new CliError(`${file}: cannot read file`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new CliError(`${file}: not valid JSON`);
  }
}

async function withQueues<T>(config: Config, work: (deps: ReturnType<typeof createDeadLetters>) => Promise<T>): Promise<T> {
  const url = config.redis.url ?? "redis://127.0.0.1:6379";
  if (config.redis.url === undefined && !(await answersPing("127.0.0.1", 6379))) throw new CliError("no Redis answers on 127.0.0.1:6379; set REDIS_URL");
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  const log = createLogger("silent");
  const queues = createQueues(redis, { prefix: config.redis.prefix, keepCompletedSeconds: config.delivery.keepCompletedJobsHours * 3600, keepFinishedSendJobsSeconds: config.delivery.keepFinishedSendJobsMinutes * 60 });
  try {
    const ledger = createLedger(redis, config.redis.prefix, config.delivery.ledgerRetentionDays * 86_400);
    const senderState = createSenderState(redis, config.redis.prefix, queues.byName.delivery, log, createMetrics({ defaultMetrics: false }));
    return await work(createDeadLetters({ queues, ledger, senderState, log }));
  } finally {
    await queues.close();
    await redis.quit();
  }
}

async function run(argv: readonly string[]): Promise<void> {
  const [command, sub, ...rest] = argv;
  if (command === "serve") return serve(argv.includes("--role") ? (argv[argv.indexOf("--role") + 1] as "api" | "worker" | "all") : "all");
  if (command === undefined || command === "help" || command === "--help") return out(usage);
  const config = loadConfig(process.env);

  switch (`${command} ${sub ?? ""}`.trim()) {
    case "mappings check": {
      // The checks serve runs at boot, against the same configuration.
      const mapping = loadSiteMapping({ ...config.mapping, dir: rest[0] ?? config.mapping.dir });
      return out(`ok: ${mapping.rules.length} rules valid (rules hash ${mapping.rulesHash.slice(0, 12)})`);
    }
    case "subscriptions sync": {
      const fhir = fhirFor(config);
      const base = config.http.publicUrl;
      if (base === undefined) throw new CliError("PUBLIC_URL is not set: the FHIR server needs the URL to notify");
      // Medplum delivers only `active` Subscriptions and never activates `requested` ones.
      const software = await fhir.serverSoftware();
      const problems: string[] = [];
      for (const [name, source] of Object.entries(config.sources)) {
        const desired = desiredSubscriptions(name, source, `${base}/hooks/fhir/${name}`, secretHeaderOf(source), initialStatusFor(source, software));
        const result = await syncSubscriptions(fhir, desired);
        const reactivated = result.reactivated > 0 ? ` (${result.reactivated} re-activated from error/off)` : "";
        // Read back: a Subscription that is not active delivers nothing, whatever we asked for.
        const found = await verifySubscriptions(fhir, desired);
        const counts = new Map<string, number>();
        for (const f of found) counts.set(f.status, (counts.get(f.status) ?? 0) + 1);
        const byStatus = [...counts].map(([status, n]) => `${n} ${status}`);
        out(`${name}: created ${result.created}, updated ${result.updated}${reactivated}, unchanged ${result.unchanged}${found.length > 0 ? `; on the server: ${byStatus.join(", ")}` : ""}`);
        for (const f of found.filter((f) => f.status !== "active")) {
          const what = f.id !== undefined ? `Subscription/${f.id}` : `the Subscription for ${f.key}`;
          problems.push(
            f.status === "requested"
              ? `${name}: ${what} is still requested: the FHIR server has not activated it and will deliver nothing (a Medplum server needs sources.${name}.subscription.initialStatus: active)`
              : `${name}: ${what} is ${f.status} on the FHIR server`,
          );
        }
      }
      if (problems.length > 0) throw new CliError(problems.join("; "));
      return;
    }
    case "subscriptions list":
      // Each entry says whether the server delivers through it (`problem`: not-activated, error, off).
      return out(await listSubscriptions(fhirFor(config), { now: systemClock.now(), activationGraceMs: config.ops.subscriptionActivationSeconds * 1000 }));
    case "templates compare": {
      const { lines, mismatches, checked } = await templatesCompare(config).catch((err: unknown) => {
        throw new CliError((err as Error).message);
      });
      for (const line of lines) out(line);
      if (mismatches > 0) throw new CliError(`${mismatches} of ${checked} template translations differ from what Meta has`);
      return;
    }
    case "dlq list":
      return out(await withQueues(config, (dlq) => dlq.list()));
    case "dlq replay":
      return out(await withQueues(config, (dlq) => dlq.replay(rest.length > 0 ? rest : undefined)));
    default:
      break;
  }
  if (command === "preview") {
    if (sub === undefined) throw new CliError("preview needs a file: fhir-notify preview <resource.json>");
    const input = readJsonFile(sub) as FhirResource | undefined;
    if (typeof input !== "object" || input === null || typeof (input as { resourceType?: unknown }).resourceType !== "string") {
      throw new CliError(`${sub}: not a FHIR resource (no resourceType)`);
    }
    // A Bundle carries the resource first and its references (Patient, Location, Consent...) after it.
    let resource: FhirResource = input;
    let fhir: FhirPort;
    if (input.resourceType === "Bundle") {
      const resources = (input.entry ?? []).flatMap((e) => (e.resource !== undefined ? [e.resource] : []));
      if (resources[0] === undefined) throw new CliError(`${sub}: the Bundle has no resources`);
      resource = resources[0];
      fhir = inlineFhir(resources);
    } else fhir = config.fhir !== undefined ? fhirFor(config) : inlineFhir([input]);
    const mapping = loadSiteMapping(config.mapping);
    return out(await previewResource(mapping, resource, fhir, systemClock.now()));
  }
  throw new CliError(`unknown command '${argv.join(" ")}'; run 'fhir-notify help'`);
}

try {
  await run(process.argv.slice(2));
} catch (err) {
  if (err instanceof CliError || err instanceof ConfigError || err instanceof MappingError) fail(err.message);
  if (err instanceof FhirError) fail(`FHIR server: ${err.message}`);
  fail(`unexpected error: ${(err as Error).message}`);
}
