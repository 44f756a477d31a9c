import type { Context } from "hono";
import type { IncomingMessage } from "node:http";

/**
 * Whether the request came over loopback. Under @hono/node-server the socket is on c.env.incoming;
 * app.request() in tests has no socket at all and counts as loopback (it never crosses a network).
 */
export function isFromLoopback(c: Context): boolean {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming === undefined) return true;
  const address = incoming.socket.remoteAddress ?? "";
  return address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127.");
}
