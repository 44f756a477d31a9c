import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { luaScript } from "../redis/lua-script.js";

/**
 * One audit writer per delivery at a time. Every status step of a delivery is its own
 * write-communication job, and on a FHIR server whose conditional create is not atomic (older
 * HAPI, Microsoft's fhir-server) two of them running at once can both create a Communication.
 * The lock makes the steps of one delivery take turns; steps of different deliveries still run
 * in parallel.
 */
export interface DeliveryLocks {
  /** The held lock, or undefined when another job holds it (try again later). */
  acquire(deliveryId: string): Promise<HeldLock | undefined>;
}

export interface HeldLock {
  /** Stops renewing and deletes the lock if it is still ours (never another job's). */
  release(): Promise<void>;
}

// Compare-and-delete / compare-and-extend: a lock that expired and was taken by another job must
// not be deleted or extended by the job that lost it.
const release = luaScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`);
const renew = luaScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`);

export interface DeliveryLockOptions {
  /**
   * How long a lock outlives a crashed holder. It is renewed every third of this while the job
   * runs, so a FHIR call slower than it (timeout × retries) keeps the lock; only a dead worker
   * lets it lapse.
   */
  ttlMs?: number;
  /** A renewal failed (Redis down) or found the lock taken: logged by the caller. */
  onRenewFailure?: (deliveryId: string, reason: "lost" | "error") => void;
}

export function createDeliveryLocks(redis: Redis, prefix: string, options: DeliveryLockOptions = {}): DeliveryLocks {
  const ttlMs = options.ttlMs ?? 30_000;
  const key = (deliveryId: string) => `${prefix}:audit-lock:${deliveryId}`;

  return {
    async acquire(deliveryId) {
      const token = randomUUID();
      const k = key(deliveryId);
      if ((await redis.set(k, token, "PX", ttlMs, "NX")) !== "OK") return undefined;
      const timer = setInterval(() => {
        renew(redis, [k], [token, ttlMs]).then(
          (kept) => {
            if (kept === 1) return;
            // Lapsed or taken by another job: no later renewal can win it back, so stop here
            // instead of reporting the same loss every third of a TTL until the job ends.
            clearInterval(timer);
            options.onRenewFailure?.(deliveryId, "lost");
          },
          () => options.onRenewFailure?.(deliveryId, "error"),
        );
      }, Math.max(1, Math.floor(ttlMs / 3)));
      // A pending renewal must not keep a stopping process alive.
      timer.unref();
      return {
        async release() {
          clearInterval(timer);
          await release(redis, [k], [token]);
        },
      };
    },
  };
}
