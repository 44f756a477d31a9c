import type { Logger } from "../shared/logger.js";
import { buildHookRequest, parseRestHook, shouldNotify, type HookRequest, type RestHook } from "./rest-hook-subscription.js";
import type { Interaction, ResourceChange, SandboxRepository, StoredResource } from "./sandbox-repository.js";
import type { WriteLock } from "./write-lock.js";

interface RestHookDeliveryDeps {
  readonly repo: SandboxRepository;
  readonly fetch: typeof fetch;
  readonly log: Logger;
  readonly writeLock: WriteLock;
  /** Delay before retry number `attempt` (1 = the first retry). */
  readonly retryDelayMs: (attempt: number) => number;
  readonly timeoutMs: number;
}

interface RestHookDelivery {
  /** Evaluates active rest-hook Subscriptions against this change and queues matching deliveries. */
  notify(change: ResourceChange): void;
  /** Stops retries and new deliveries, then waits for requests already on the wire. */
  close(): Promise<void>;
}

interface Job {
  readonly interaction: Interaction;
  readonly resource: StoredResource;
}

/** 1 s, 2 s, 4 s, … capped at 30 s. */
export const exponentialBackoff = (attempt: number): number => Math.min(1000 * 2 ** (attempt - 1), 30_000);

/**
 * Criteria are matched against the version that was written, at write time (as medplum's
 * subscription worker does), so a later edit cannot change what this event meant. Sending
 * happens afterwards and never inside the triggering request. Deliveries to one Subscription
 * go out in write order; each attempt re-reads the Subscription and stops if it is no longer
 * active, and the last failed attempt moves it to `error`.
 */
export function createRestHookDelivery(deps: RestHookDeliveryDeps): RestHookDelivery {
  const stopping = new AbortController();
  const queues = new Map<string, Promise<void>>();
  const pending = new Set<Promise<void>>();
  const log = deps.log.child({ component: "sandbox-rest-hook" });

  function enqueue(subscriptionId: string, job: Job): void {
    const previous = queues.get(subscriptionId) ?? Promise.resolve();
    const next = previous.then(() => deliver(subscriptionId, job));
    queues.set(subscriptionId, next);
    pending.add(next);
    void next.finally(() => {
      pending.delete(next);
      if (queues.get(subscriptionId) === next) queues.delete(subscriptionId);
    });
  }

  async function deliver(subscriptionId: string, job: Job): Promise<void> {
    // Let the request that caused this change answer first.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const fields = { subscription: subscriptionId, resource: `${job.resource.resourceType}/${job.resource.id}`, interaction: job.interaction };
    for (let attempt = 1; !stopping.signal.aborted; attempt++) {
      const hook = activeHook(subscriptionId);
      if (hook === undefined) {
        log.debug(fields, "subscription no longer active; delivery dropped");
        return;
      }
      const failure = await send(buildHookRequest(hook, job.interaction, job.resource));
      if (failure === undefined) {
        log.info({ ...fields, attempt }, "rest-hook delivered");
        return;
      }
      log.warn({ ...fields, attempt, failure }, "rest-hook delivery failed");
      if (attempt >= hook.maxAttempts) {
        await markError(subscriptionId, `rest-hook delivery failed after ${attempt} attempts: ${failure}`);
        return;
      }
      await pause(deps.retryDelayMs(attempt));
    }
  }

  function activeHook(subscriptionId: string): RestHook | undefined {
    const current = deps.repo.current("Subscription", subscriptionId);
    if (current === undefined) return undefined;
    try {
      const hook = parseRestHook(current);
      return hook.status === "active" ? hook : undefined;
    } catch {
      return undefined;
    }
  }

  /** Returns undefined on success, otherwise a short reason with no payload data in it. */
  async function send(request: HookRequest): Promise<string | undefined> {
    try {
      const res = await deps.fetch(request.url, {
        method: request.method,
        headers: request.headers,
        ...(request.body !== undefined ? { body: request.body } : {}),
        // A redirect would send the payload somewhere the Subscription does not name.
        redirect: "manual",
        signal: AbortSignal.timeout(deps.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.status >= 200 && res.status < 300 ? undefined : `HTTP ${res.status}`;
    } catch (err) {
      return describeFailure(err);
    }
  }

  async function markError(subscriptionId: string, text: string): Promise<void> {
    await deps.writeLock(async () => {
      const current = deps.repo.current("Subscription", subscriptionId);
      if (current === undefined || (current as { status?: string }).status !== "active") return;
      await deps.repo.updateResource({ ...current, status: "error", error: text } as StoredResource, {
        ...(current.meta?.versionId !== undefined ? { ifMatch: current.meta.versionId } : {}),
      });
    }).catch((err: unknown) => log.error({ err, subscription: subscriptionId }, "could not set subscription status to error"));
  }

  function pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (stopping.signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        stopping.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      stopping.signal.addEventListener("abort", done, { once: true });
    });
  }

  return {
    notify(change) {
      if (stopping.signal.aborted) return;
      for (const subscription of deps.repo.live("Subscription")) {
        try {
          const hook = parseRestHook(subscription);
          if (shouldNotify(hook, change.interaction, change.resource)) enqueue(hook.id, change);
        } catch (err) {
          // Stored Subscriptions were checked on write; a failure here is a bug, not input.
          log.error({ err, subscription: subscription.id }, "subscription evaluation failed");
        }
      }
    },
    async close() {
      stopping.abort();
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}

function describeFailure(err: unknown): string {
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) return "timed out";
  const code = err instanceof Error ? (err.cause as { code?: unknown } | undefined)?.code : undefined;
  return typeof code === "string" ? `network error (${code})` : "network error";
}
