import { createHash, timingSafeEqual } from "node:crypto";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env.js";
import { AppError } from "../../shared/app-error.js";
import { isFromLoopback } from "../peer.js";

/** Hash both sides first so the compare is constant-time whatever the lengths. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * /admin/* needs `Authorization: Bearer $ADMIN_TOKEN`. Without a configured token the admin API
 * answers only on loopback, so an embedded demo is usable and a deployed one is never open.
 */
export const adminAuth = (token: string | undefined) =>
  createMiddleware<AppEnv>(async (c, next) => {
    if (token === undefined) {
      if (!isFromLoopback(c)) throw new AppError("forbidden", "admin API is only open on loopback when ADMIN_TOKEN is not set");
      return next();
    }
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (match?.[1] === undefined) throw new AppError("login", "admin API needs Authorization: Bearer <ADMIN_TOKEN>", "Authorization");
    if (!sameSecret(match[1], token)) throw new AppError("security", "admin token does not match", "Authorization");
    return next();
  });
