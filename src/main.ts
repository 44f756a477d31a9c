import { pathToFileURL } from "node:url";
import { loadConfig } from "./config/load-config.js";
import { ConfigError } from "./shared/config-error.js";
import type { Config } from "./config/config.schema.js";
import { createLogger } from "./shared/logger.js";
import { registerShutdown } from "./shared/lifecycle.js";
import { systemClock } from "./shared/clock.js";
import { startService, type Role, type RunningService } from "./service.js";
import { MappingError } from "./mapping/load-rules.js";

/** Print one line saying what is wrong and where, and exit non-zero. Never a stack trace. */
function fail(message: string): never {
  process.stderr.write(`fhir-notify: ${message}\n`);
  process.exit(1);
}

export function loadConfigOrExit(env: NodeJS.ProcessEnv): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) fail(`config error: ${err.message}`);
    throw err;
  }
}

function banner(s: RunningService, config: Config): string {
  const tomorrow = new Date(Date.now() + 24 * 3600 * 1000);
  tomorrow.setUTCHours(15, 0, 0, 0);
  const end = new Date(tomorrow.getTime() + 30 * 60 * 1000);
  const seed = s.sandboxSeed;
  const lines = [
    "",
    "fhir-notify is running",
    `  listening      ${s.url}  (FHIR hooks: ${s.url}/hooks/fhir/<source>, WhatsApp webhook: ${s.url}/hooks/whatsapp)`,
    `  console        ${s.url}/console  (timeline, why-not-sent, operations, preview)`,
    `  redis          ${s.embedded.redis === "embedded" ? `embedded redis-server (${s.redisTarget.url}, data in ${config.redis.dataDir})` : s.embedded.redis === "local" ? `local ${s.redisTarget.url}` : "REDIS_URL"}`,
    `  fhir           ${s.embedded.fhir === "sandbox" ? `embedded sandbox FHIR R4 server at ${s.fhirBaseUrl}` : s.fhirBaseUrl}`,
    `  whatsapp       ${s.embedded.whatsapp === "dry-run" ? `dry-run outbox (nothing leaves this machine): ${s.url}/admin/outbox` : "WhatsApp Cloud API"}`,
    `  sources        ${Object.keys(s.sources).join(", ")}`,
    `  rules          ${s.mapping.rules.map((r) => r.id).join(", ")} (hash ${s.mapping.rulesHash.slice(0, 12)})`,
  ];
  if (seed !== undefined) {
    const appointment = {
      resourceType: "Appointment",
      status: "booked",
      start: tomorrow.toISOString(),
      end: end.toISOString(),
      participant: [
        { actor: { reference: `Patient/${seed.patientId}` }, status: "accepted" },
        { actor: { reference: `Practitioner/${seed.practitionerId}` }, status: "accepted" },
        { actor: { reference: `Location/${seed.locationId}` }, status: "accepted" },
      ],
    };
    lines.push(
      "",
      "Try it: book a demo appointment in the sandbox (a WhatsApp confirmation lands in the outbox):",
      `  curl -s -X POST ${s.fhirBaseUrl}/Appointment -H 'content-type: application/fhir+json' -d '${JSON.stringify(appointment)}'`,
      "then look at the message and its audit record:",
      `  curl -s ${s.url}/admin/outbox`,
      `  curl -s '${s.fhirBaseUrl}/Communication?_sort=-_lastUpdated'`,
    );
  }
  lines.push("", "Ctrl-C stops everything it started.", "");
  return lines.join("\n");
}

export async function serve(role: Role): Promise<void> {
  const config = loadConfigOrExit(process.env);
  const log = createLogger(config.log.level);
  if (config.fhir === undefined) {
    // The sandbox is a demo: let a newcomer see a message at any hour. Real deployments keep quiet hours.
    config.delivery.quietHours.enabled = false;
  }
  let service: RunningService;
  try {
    service = await startService({ config, log, clock: systemClock, role });
  } catch (err) {
    if (err instanceof ConfigError || err instanceof MappingError) fail(err.message);
    if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") fail(`port ${config.http.port} is in use; set PORT to another port`);
    throw err;
  }
  registerShutdown(log, config.shutdownGraceMs, () => [["service", () => service.stop()]]);
  process.stdout.write(banner(service, config));
}

function parseRole(argv: readonly string[]): Role {
  const i = argv.indexOf("--role");
  const value = i >= 0 ? argv[i + 1] : "all";
  if (value !== "api" && value !== "worker" && value !== "all") fail(`--role must be api, worker or all`);
  return value;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await serve(parseRole(process.argv.slice(2)));
}
