import type { Bundle, Coding, Extension, Subscription } from "fhir/r4";
import type { Logger } from "pino";
import type { FhirPort } from "../fhir/fhir.port.js";
import type { TriggerType } from "../shared/trigger-type.js";
import type { SourceConfig } from "./source.config.js";

const managedBy: Coding = { system: "https://fhir-notify.dev/fhir/CodeSystem/managed-by", code: "fhir-notify" };
/**
 * R4 Subscription has no `identifier` element (it arrived in R5): HAPI's lenient parser drops unknown
 * elements and Medplum rejects them. So the per-(source, type) key is a second `meta.tag`, which
 * every server keeps and can search with `_tag`.
 */
const keySystem = "https://fhir-notify.dev/sid/subscription";

const backport = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/";
const hapiSendDeletes = "http://hapifhir.io/fhir/StructureDefinition/subscription-send-delete-messages";
const medplumSecret = "https://www.medplum.com/fhir/StructureDefinition/subscription-secret";

/**
 * Every status the trigger rules (reference §9) act on, including the ones that *stop* a message:
 * R4 evaluates criteria on the new version only, so a narrow filter never hears about a
 * cancellation (§2.2).
 */
const watchedStatuses: Record<TriggerType, string> = {
  Appointment: "proposed,pending,booked,arrived,fulfilled,cancelled,noshow,entered-in-error",
  MedicationDispense: "preparation,in-progress,on-hold,completed,cancelled,declined,stopped,entered-in-error",
  MedicationRequest: "active,on-hold,completed,cancelled,stopped,entered-in-error",
  DiagnosticReport: "preliminary,final,amended,corrected,appended,cancelled,entered-in-error",
  Task: "ready,in-progress,on-hold,completed,cancelled,failed,entered-in-error",
};

export type InitialStatus = "active" | "requested";

/**
 * The status to create this source's Subscriptions in: the configured one, else what the server
 * needs. Medplum (its CapabilityStatement says `software.name: medplum`; X-Signature HMAC is
 * Medplum's too) delivers only `active` Subscriptions and never activates `requested` ones;
 * servers that follow R4 (HAPI, Smile CDR) take `requested` and activate it themselves.
 */
export function initialStatusFor(cfg: SourceConfig, serverSoftware: string | undefined): InitialStatus {
  if (cfg.subscription.initialStatus !== undefined) return cfg.subscription.initialStatus;
  return cfg.auth.type === "hmac" || /medplum/i.test(serverSoftware ?? "") ? "active" : "requested";
}

/** The Subscriptions this source should have on its server; empty when subscriptions are not managed. */
export function desiredSubscriptions(
  source: string,
  cfg: SourceConfig,
  endpoint: string,
  secretHeader: string | undefined,
  status: InitialStatus = initialStatusFor(cfg, undefined),
): Subscription[] {
  // Medplum keeps only the first two ":"-separated pieces of a header string (reference §2.4).
  if (secretHeader !== undefined && !/^[A-Za-z0-9-]+: ?[^:]+$/.test(secretHeader)) {
    throw new Error(`source ${source}: the channel header must be "Name: value" with no ":" in the value`);
  }
  const header = secretHeader !== undefined ? { header: [secretHeader] } : {};
  const sub = cfg.subscription;
  return cfg.resourceTypes.flatMap((type): Subscription[] => {
    const filter = `${type}?status=${watchedStatuses[type]}`;
    const meta = { tag: [managedBy, { system: keySystem, code: subscriptionKey(source, type) }] };
    const reason = `fhir-notify: ${type} changes for source ${source}`;
    switch (sub.style) {
      case "none":
        return [];
      case "r4-rest-hook":
        return [
          {
            resourceType: "Subscription",
            meta,
            status,
            reason,
            criteria: filter,
            channel: {
              // Without this HAPI never tells us about deletes (reference §3); other servers ignore it.
              extension: [{ url: hapiSendDeletes, valueBoolean: true }],
              type: "rest-hook",
              endpoint,
              ...(sub.payload === "full-resource" ? { payload: "application/fhir+json" } : {}),
              ...header,
            },
            ...(cfg.auth.type === "hmac" ? { extension: [{ url: medplumSecret, valueString: cfg.auth.secret }] } : {}),
          },
        ];
      case "backport-r4": {
        const channelExtensions: Extension[] =
          sub.heartbeatSeconds !== undefined ? [{ url: `${backport}backport-heartbeat-period`, valueUnsignedInt: sub.heartbeatSeconds }] : [];
        return [
          {
            resourceType: "Subscription",
            meta: { ...meta, profile: [`${backport}backport-subscription`] },
            status,
            reason,
            criteria: sub.topicUrl ?? "",
            _criteria: { extension: [{ url: `${backport}backport-filter-criteria`, valueString: filter }] },
            channel: {
              ...(channelExtensions.length > 0 ? { extension: channelExtensions } : {}),
              type: "rest-hook",
              endpoint,
              payload: "application/fhir+json",
              _payload: { extension: [{ url: `${backport}backport-payload-content`, valueCode: sub.payload }] },
              ...header,
            },
          },
        ];
      }
    }
  });
}

/**
 * Idempotent: ours are found by tag, created when missing, updated only when a field we manage
 * differs, and put back to the desired status when the server switched them to `error`/`off`
 * (re-activation is the client's job, reference §5.6), or when one sits in `requested` but the
 * desired status is `active` (a server that never activates, such as Medplum).
 */
export async function syncSubscriptions(
  fhir: FhirPort,
  desired: readonly Subscription[],
): Promise<{ created: number; updated: number; unchanged: number; reactivated: number }> {
  const existing = await findOurs(fhir);
  /** `reactivated` counts the updates that put an inactive Subscription back to the desired status. */
  const counts = { created: 0, updated: 0, unchanged: 0, reactivated: 0 };
  for (const want of desired) {
    const key = keyOf(want);
    if (key === undefined) throw new Error("desired Subscription carries no fhir-notify key tag");
    const have = existing.find((s) => keyOf(s) === key);
    if (have?.id === undefined) {
      await fhir.create(want);
      counts.created += 1;
      continue;
    }
    const inactive = have.status === "error" || have.status === "off" || (have.status === "requested" && want.status === "active");
    if (!inactive && canonical(managedFields(have)) === canonical(managedFields(want))) {
      counts.unchanged += 1;
      continue;
    }
    const version = have.meta?.versionId;
    await fhir.update({ ...want, id: have.id }, version !== undefined ? { ifMatch: `W/"${version}"` } : {});
    counts.updated += 1;
    if (inactive) counts.reactivated += 1;
  }
  return counts;
}

export interface ListedSubscription {
  id: string;
  /** The configured source, from our key tag. */
  source: string | undefined;
  criteria: string;
  status: Subscription["status"];
  lastUpdated?: string;
  error?: string;
  endpoint?: string;
  /** Why the server is not delivering to it; absent when it is (or may still activate). */
  problem?: SubscriptionProblem;
}

/**
 * `not-activated`: still `requested` longer than the server needs to activate it, so it never
 * delivers (Medplum never activates; a HAPI that rejected the endpoint leaves it too).
 * `error`/`off`: the server gave up delivering (reference §2.1, §4.4).
 */
export type SubscriptionProblem = "not-activated" | "error" | "off";

export interface HealthOptions {
  now: Date;
  /** A Subscription still `requested` this long after its last update counts as not activated. */
  activationGraceMs: number;
}

export function subscriptionProblem(s: Pick<Subscription, "status" | "meta">, options: HealthOptions): SubscriptionProblem | undefined {
  switch (s.status) {
    case "active":
      return undefined;
    case "error":
    case "off":
      return s.status;
    case "requested": {
      const since = Date.parse(s.meta?.lastUpdated ?? "");
      // Without a lastUpdated there is no telling how long it has waited: report it now.
      return Number.isNaN(since) || options.now.getTime() - since >= options.activationGraceMs ? "not-activated" : undefined;
    }
  }
}

export async function listSubscriptions(fhir: FhirPort, options: HealthOptions): Promise<ListedSubscription[]> {
  return (await findOurs(fhir)).map((s) => {
    const problem = subscriptionProblem(s, options);
    return {
      id: s.id ?? "",
      source: sourceOf(s),
      criteria: s.criteria,
      status: s.status,
      ...(s.meta?.lastUpdated !== undefined ? { lastUpdated: s.meta.lastUpdated } : {}),
      ...(s.error !== undefined ? { error: s.error } : {}),
      ...(s.channel.endpoint !== undefined ? { endpoint: s.channel.endpoint } : {}),
      ...(problem !== undefined ? { problem } : {}),
    };
  });
}

/**
 * Read ours back after a sync: the status each desired Subscription has on the server now. A server
 * that activates may take a moment, so `requested` is re-read a few times before it is reported.
 */
export async function verifySubscriptions(
  fhir: FhirPort,
  desired: readonly Subscription[],
  options: { attempts?: number; delayMs?: number } = {},
): Promise<Array<{ key: string; id: string | undefined; status: Subscription["status"] | "missing" }>> {
  const attempts = options.attempts ?? 4;
  for (let attempt = 1; ; attempt++) {
    const ours = await findOurs(fhir);
    const found = desired.map((want) => {
      const key = keyOf(want) ?? "";
      const have = ours.find((s) => keyOf(s) === key);
      return { key, id: have?.id, status: have?.status ?? ("missing" as const) };
    });
    const waiting = found.some((f, i) => f.status === "requested" && desired[i]?.status === "requested");
    if (!waiting || attempt >= attempts) return found;
    await new Promise((r) => setTimeout(r, (options.delayMs ?? 500) * attempt));
  }
}

function subscriptionKey(source: string, type: string): string {
  return `${source}.${type}`;
}

async function findOurs(fhir: FhirPort): Promise<Subscription[]> {
  const found: Subscription[] = [];
  let page: Bundle | undefined = await fhir.search("Subscription", { _tag: `${managedBy.system}|${managedBy.code}`, _count: "100" });
  for (let pages = 0; page !== undefined && pages < 100; pages++) {
    for (const e of page.entry ?? []) {
      const r = e.resource;
      // Filtered again here: a server that ignores `_tag` must not make us adopt someone else's Subscription.
      if (r?.resourceType === "Subscription" && isOurs(r)) found.push(r);
    }
    const next: string | undefined = page.link?.find((l) => l.relation === "next")?.url;
    page = next !== undefined ? await fhir.fetchPage(next) : undefined;
  }
  return found;
}

function isOurs(s: Subscription): boolean {
  return (s.meta?.tag ?? []).some((t) => t.system === managedBy.system && t.code === managedBy.code);
}

function keyOf(s: Subscription): string | undefined {
  return s.meta?.tag?.find((t) => t.system === keySystem)?.code;
}

function sourceOf(s: Subscription): string | undefined {
  const key = keyOf(s);
  return key?.slice(0, key.lastIndexOf("."));
}

function managedFields(s: Subscription): unknown {
  const c = s.channel;
  return {
    criteria: s.criteria,
    _criteria: s._criteria,
    reason: s.reason,
    extension: s.extension,
    profile: s.meta?.profile,
    channel: { type: c.type, endpoint: c.endpoint, payload: c.payload, _payload: c._payload, header: c.header, extension: c.extension },
  };
}

/** JSON with sorted keys and without undefined, so field order on the server does not count as a change. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}

export interface UnhealthySubscription {
  id: string;
  /** The configured source this Subscription belongs to, from its key tag. */
  source: string | undefined;
  status: Subscription["status"];
  problem: SubscriptionProblem;
}

/**
 * Ours that the server is not delivering through: `error`/`off`, or `requested` for longer than
 * the activation grace. Each is logged as `{event: "subscription-unhealthy"}` for alerting; the
 * server never re-activates them, `fhir-notify subscriptions sync` does. The server's `error` text
 * is not logged: it is free text.
 */
export function unhealthySubscriptions(listed: readonly ListedSubscription[], log: Pick<Logger, "warn">): UnhealthySubscription[] {
  const unhealthy: UnhealthySubscription[] = [];
  for (const s of listed) {
    if (s.problem === undefined || s.id === "") continue;
    unhealthy.push({ id: s.id, source: s.source, status: s.status, problem: s.problem });
    log.warn(
      { event: "subscription-unhealthy", subscription: `Subscription/${s.id}`, source: s.source, status: s.status, problem: s.problem },
      s.problem === "not-activated"
        ? "a Subscription is still requested: the FHIR server has not activated it and delivers nothing (run `fhir-notify subscriptions sync`; Medplum needs subscription.initialStatus: active)"
        : "a Subscription is not active on the FHIR server; run `fhir-notify subscriptions sync` to re-activate it",
    );
  }
  return unhealthy;
}

export async function checkSubscriptions(fhir: FhirPort, log: Pick<Logger, "warn">, options: HealthOptions): Promise<UnhealthySubscription[]> {
  return unhealthySubscriptions(await listSubscriptions(fhir, options), log);
}
