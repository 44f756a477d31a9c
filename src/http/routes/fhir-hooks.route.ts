import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "../app-env.js";
import { AppError, operationOutcome } from "../errors.js";
import { isFromLoopback } from "../peer.js";
import type { Intake } from "../../intake/accept.js";
import type { Clock } from "../../shared/clock.js";

const methods = new Set(["POST", "PUT", "DELETE"]);

/** /hooks/fhir/:source[/:type/:id] — every notification shape FHIR servers send (intake/normalize.ts). */
export function fhirHooksRoute(deps: { intake: Intake; clock: Clock; bodyLimitBytes: number }): Hono<AppEnv> {
  const limit = bodyLimit({
    maxSize: deps.bodyLimitBytes,
    onError: () => {
      throw new AppError("too-long", `request body is larger than ${deps.bodyLimitBytes} bytes`);
    },
  });

  const handle = async (c: Context<AppEnv>) => {
    const method = c.req.method;
    if (method === "OPTIONS") return c.body(null, 200, { allow: "POST, PUT, DELETE, OPTIONS", "webhook-allowed-origin": "*" });
    if (!methods.has(method)) {
      return c.body(JSON.stringify(operationOutcome("error", "not-supported", `method ${method} is not supported here`)), 405, {
        "content-type": "application/fhir+json",
        allow: "POST, PUT, DELETE, OPTIONS",
      });
    }
    // Raw bytes first: signatures are computed over them, and nothing is parsed before authentication.
    const raw = new Uint8Array(await c.req.arrayBuffer());
    const { source, type, id } = c.req.param() as { source: string; type?: string; id?: string };
    const reply = await deps.intake.accept(
      {
        source,
        method: method as "POST" | "PUT" | "DELETE",
        ...(type !== undefined ? { pathType: type } : {}),
        ...(id !== undefined ? { pathId: id } : {}),
        ...(c.req.header("content-type") !== undefined ? { contentType: c.req.header("content-type") } : {}),
        header: (name: string) => c.req.header(name),
        raw,
        fromLoopback: isFromLoopback(c),
        receivedAt: deps.clock.now().toISOString(),
      },
      c.get("log"),
    );
    const isOutcome = (reply.body as { resourceType?: string }).resourceType === "OperationOutcome";
    return c.body(JSON.stringify(reply.body), reply.status, { "content-type": isOutcome ? "application/fhir+json" : "application/json" });
  };

  return new Hono<AppEnv>().use(limit).all("/:source", handle).all("/:source/:type/:id", handle);
}
