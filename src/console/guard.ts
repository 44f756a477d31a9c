import { createHmac, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import { getCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../http/app-env.js";
import { AppError } from "../shared/app-error.js";
import { adminAuth } from "../http/middleware/admin-auth.middleware.js";
import { isFromLoopback } from "../http/peer.js";

export const sessionCookie = "fhir_notify_console";

/**
 * What the console's cookie holds: an HMAC of the admin token, so the cookie proves the token was
 * given without being the token (a copied cookie still dies when the token is rotated).
 */
export function sessionValue(token: string): string {
  return createHmac("sha256", token).update("fhir-notify console session").digest("base64url");
}

function sameValue(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The same rule as /admin: without ADMIN_TOKEN, loopback only; with it, `Authorization: Bearer`
 * (scripts, tests) or the session cookie the login page sets (a browser cannot send the header).
 * A browser without either is sent to the login page rather than shown an OperationOutcome.
 */
export const consoleGuard = (token: string | undefined) => {
  const bearer = adminAuth(token);
  return createMiddleware<AppEnv>(async (c, next) => {
    if (token !== undefined) {
      const cookie = getCookie(c, sessionCookie);
      if (cookie !== undefined && sameValue(cookie, sessionValue(token))) return next();
      if (c.req.header("authorization") === undefined) {
        if (c.req.method === "GET") return c.redirect("/console/login", 303);
        throw new AppError("login", "the console needs the admin token: sign in at /console/login", "Authorization");
      }
    } else if (!isFromLoopback(c)) throw new AppError("forbidden", "the console is only open on loopback when ADMIN_TOKEN is not set");
    return bearer(c, next);
  });
};

/**
 * Actions (POST) only from the console's own pages: the browser's Sec-Fetch-Site says same-origin,
 * or the Origin is this service's (the request's own or the configured public URL). A form on
 * another site cannot replay a DLQ entry or pause the sender with the reviewer's cookie; the
 * cookie is SameSite=Strict as well.
 */
export const sameOriginOnly = (publicUrl: string | undefined) => {
  const publicOrigin = publicUrl !== undefined ? new URL(publicUrl).origin : undefined;
  return createMiddleware<AppEnv>(async (c, next) => {
    if (c.req.method === "GET" || c.req.method === "HEAD") return next();
    if (!isSameOrigin(c, publicOrigin)) throw new AppError("forbidden", "console actions are accepted only from the console's own pages (same origin)");
    return next();
  });
};

function isSameOrigin(c: Context, publicOrigin: string | undefined): boolean {
  const site = c.req.header("sec-fetch-site");
  if (site !== undefined) return site === "same-origin";
  const origin = c.req.header("origin");
  if (origin === undefined) return false;
  return origin === new URL(c.req.url).origin || origin === publicOrigin;
}
