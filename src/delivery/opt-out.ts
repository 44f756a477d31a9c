import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/** Phone numbers are only ever stored hashed: enough to honour STOP, useless to a reader of Redis. */
export function hashPhone(e164: string): string {
  return createHash("sha256").update(`fhir-notify:${e164.replace(/[^\d+]/g, "").replace(/^(?!\+)/, "+")}`).digest("hex");
}

export interface OptOutStore {
  optOut(phoneHash: string, at: string): Promise<boolean>;
  isOptedOut(phoneHash: string): Promise<boolean>;
  /** The patient last messaged at this number, so a STOP can be audited against the right Patient. */
  rememberRecipient(phoneHash: string, patientRef: string): Promise<void>;
  patientFor(phoneHash: string): Promise<string | undefined>;
}

export function createOptOutStore(redis: Redis, prefix: string): OptOutStore {
  return {
    async optOut(phoneHash, at) {
      return (await redis.hsetnx(`${prefix}:optout`, phoneHash, at)) === 1;
    },
    async isOptedOut(phoneHash) {
      return (await redis.hexists(`${prefix}:optout`, phoneHash)) === 1;
    },
    async rememberRecipient(phoneHash, patientRef) {
      await redis.set(`${prefix}:recip:${phoneHash}`, patientRef, "EX", 180 * 24 * 3600);
    },
    async patientFor(phoneHash) {
      return (await redis.get(`${prefix}:recip:${phoneHash}`)) ?? undefined;
    },
  };
}
