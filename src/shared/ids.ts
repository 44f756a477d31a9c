import { createHash } from "node:crypto";

/** BullMQ job ids must not contain ":" (it is the key separator); every id we build goes through here. */
function safe(part: string): string {
  return part.replace(/[^A-Za-z0-9\-.]/g, "-");
}

export function shortHash(...parts: readonly string[]): string {
  return createHash("sha256").update(parts.join("\u001f")).digest("hex").slice(0, 16);
}

/**
 * Intake dedupe key: one job per (source, Type/id, versionId). Without a version we fall
 * back to a hash of what we know, so a retried identical notification still collapses.
 */
export function intakeJobId(source: string, resourceType: string, id: string, versionId: string | undefined, fallback: string): string {
  const version = versionId !== undefined ? `v${safe(versionId)}` : `h${shortHash(fallback)}`;
  return ["intake", safe(source), safe(resourceType), safe(id), version].join("_");
}

/**
 * The FHIR server a source reads from, as a short stable key: host and path of its base URL
 * (scheme, default port, case of the host and trailing slashes ignored), hashed so it fits a job id.
 * Two channels from one server (a rest-hook and a backport subscription during a migration) share it.
 */
export function fhirServerId(baseUrl: string): string {
  const url = new URL(baseUrl);
  return `srv${shortHash(`${url.host}${url.pathname.replace(/\/+$/, "")}`)}`;
}

/**
 * The delivery id names the *intended message*: FHIR server + rule + resource + the values the rule
 * says make a message distinct (for a reminder, the appointment start); not the channel it came
 * through, so two sources notifying the same change give one message. Those values may be PHI
 * (dates), so they are hashed; a reschedule changes the hash, an edited comment does not. Builds
 * before 2026-12 put the source name where the server key is now (see ScheduleScope).
 */
export function deliveryId(server: string, ruleId: string, resourceType: string, id: string, distinctBy: readonly string[]): string {
  return ["dlv", safe(server), safe(ruleId), safe(resourceType), safe(id), shortHash(...distinctBy)].join("_");
}

export function auditJobId(deliveryId: string, step: string): string {
  return `audit_${deliveryId}_${safe(step)}`;
}
