import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
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

/** What each command accepts; parsing is strict, so anything else is one line and exit 1. */
interface CommandSpec {
  usage: string;
  help: string;
  options?: Record<string, { type: "string" | "boolean" }>;
  positionals: { min: number; max: number };
}

const roles = ["api", "worker", "all"] as const;

const commands: Record<string, CommandSpec> = {
  serve: { usage: "serve [--role api|worker|all]", help: "Run the service: api takes notifications and webhooks, worker works the queues, all does both (default).", options: { role: { type: "string" } }, positionals: { min: 0, max: 0 } },
  "mappings check": { usage: "mappings check [dir]", help: "Validate the rules in mappings/ (or dir) with every check serve runs at boot, against the same configuration.", positionals: { min: 0, max: 1 } },
  preview: { usage: "preview <resource.json>", help: "Show which rules fire for a resource (or a Bundle: the resource first, its references after) and the exact message, or why none.", positionals: { min: 1, max: 1 } },
  "subscriptions sync": { usage: "subscriptions sync", help: "Create or update this service's Subscriptions on the FHIR server, read them back, exit 1 if one is not active.", positionals: { min: 0, max: 0 } },
  "subscriptions list": { usage: "subscriptions list", help: "Show our Subscriptions and their server-side status, with a problem for each that delivers nothing.", positionals: { min: 0, max: 0 } },
  "templates compare": { usage: "templates compare", help: "Compare the templates the rules send with Meta's; exit 1 on a mismatch.", positionals: { min: 0, max: 0 } },
  "dlq list": { usage: "dlq list", help: "Show the jobs in the dead-letter queue.", positionals: { min: 0, max: 0 } },
  "dlq replay": { usage: "dlq replay [id...]", help: "Retry dead-lettered jobs (all, or the given ids; exit 1 if an id is not in the queue) and resume a halted sender.", positionals: { min: 0, max: Infinity } },
};

/** The command named by the first one or two words, and the arguments after it. */
function commandOf(argv: readonly string[]): { name: string; spec: CommandSpec; args: string[] } | undefined {
  const two = argv.slice(0, 2).join(" ");
  if (commands[two] !== undefined) return { name: two, spec: commands[two], args: argv.slice(2) };
  const one = argv[0] ?? "";
  if (commands[one] !== undefined && !one.includes(" ")) return { name: one, spec: commands[one], args: argv.slice(1) };
  return undefined;
}

function parseCommand(name: string, spec: CommandSpec, args: string[]): { values: Record<string, string | boolean | undefined>; positionals: string[]; help: boolean } {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options: { ...spec.options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const option = /'(-[^']*)'/.exec((err as Error).message)?.[1];
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") throw new CliError(`${name}: unknown option '${option ?? "?"}'; run 'fhir-notify ${name} --help'`);
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") throw new CliError(`${name}: option '${option ?? "?"}' needs a value; run 'fhir-notify ${name} --help'`);
    throw new CliError(`${name}: ${(err as Error).message.split("\n")[0] ?? "bad arguments"}`);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const help = values.help === true;
  if (!help && (parsed.positionals.length < spec.positionals.min || parsed.positionals.length > spec.positionals.max)) {
    throw new CliError(`${name}: expected ${spec.usage}; run 'fhir-notify ${name} --help'`);
  }
  return { values, positionals: parsed.positionals, help };
}

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
  if (argv.length === 0 || argv[0] === "help" || argv[0] === "--help" || argv[0] === "-h") return out(usage);
  const found = commandOf(argv);
  if (found === undefined) throw new CliError(`unknown command '${argv.join(" ")}'; run 'fhir-notify help'`);
  const { values, positionals: rest, help } = parseCommand(found.name, found.spec, found.args);
  if (help) return out(`usage: fhir-notify ${found.spec.usage}\n  ${found.spec.help}`);
  if (found.name === "serve") {
    const role = values.role ?? "all";
    if (!roles.includes(role as (typeof roles)[number])) throw new CliError("serve: --role must be api, worker or all");
    return serve(role as (typeof roles)[number]);
  }
  const config = loadConfig(process.env);
  const sub = rest[0];

  switch (found.name) {
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
      return out(
        await withQueues(config, async (dlq) => {
          // All or nothing: a mistyped id replays nothing rather than the rest without a word.
          const known = new Set((await dlq.list(10_000)).map((e) => e.id));
          const unknown = rest.filter((id) => !known.has(id));
          if (unknown.length > 0) throw new CliError(`dlq replay: no dead-lettered job with id ${unknown.map((id) => `'${id}'`).join(", ")}; see 'fhir-notify dlq list'`);
          return dlq.replay(rest.length > 0 ? rest : undefined);
        }),
      );
    default:
      break;
  }
  if (found.name === "preview" && sub !== undefined) {
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
