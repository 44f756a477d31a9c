import type { IncomingMessage } from "node:http";
import { Hono, type Context } from "hono";
import type { AppEnv } from "../app-env.js";
import { AppError, operationOutcome } from "../../shared/app-error.js";
import { isFromLoopback } from "../peer.js";
import type { Intake } from "../../intake/accept.js";
import type { Clock } from "../../shared/clock.js";

const methods = new Set(["POST", "PUT", "DELETE"]);

/**
 * Headers for a pre-serialised reply, built once per body. They carry content-length: without it
 * @hono/node-server adds one to the object it is given, so a shared object must already have it.
 */
const preparedHeaders = new Map<string, Record<string, string>>();
function headersFor(json: string): Record<string, string> {
  let headers = preparedHeaders.get(json);
  if (headers === undefined) {
    headers = { "content-type": "application/fhir+json", "content-length": String(Buffer.byteLength(json)) };
    preparedHeaders.set(json, headers);
  }
  return headers;
}

/** /hooks/fhir/:source[/:type/:id] — every notification shape FHIR servers send (intake/normalize.ts). */
export function fhirHooksRoute(deps: { intake: Intake; clock: Clock; bodyLimitBytes: number }): Hono<AppEnv> {
  const handle = async (c: Context<AppEnv>) => {
    const method = c.req.method;
    if (method === "OPTIONS") return c.body(null, 200, { allow: "POST, PUT, DELETE, OPTIONS", "webhook-allowed-origin": "*" });
    if (!methods.has(method)) {
      return c.body(JSON.stringify(operationOutcome("error", "not-supported", `method ${method} is not supported here`)), 405, {
        "content-type": "application/fhir+json",
        allow: "POST, PUT, DELETE, OPTIONS",
      });
    }
    const header = headerReader(c);
    // Raw bytes first: signatures are computed over them, and nothing is parsed before authentication.
    const raw = await readBody(c, header, deps.bodyLimitBytes);
    const contentType = header("content-type");
    const { source, type, id } = c.req.param() as { source: string; type?: string; id?: string };
    const reply = await deps.intake.accept(
      {
        source,
        method: method as "POST" | "PUT" | "DELETE",
        ...(type !== undefined ? { pathType: type } : {}),
        ...(id !== undefined ? { pathId: id } : {}),
        ...(contentType !== undefined ? { contentType } : {}),
        header,
        raw,
        fromLoopback: isFromLoopback(c),
        receivedAt: deps.clock.now().toISOString(),
      },
      c.var.requestLog,
    );
    if (reply.json !== undefined) return c.body(reply.json, reply.status, headersFor(reply.json));
    const isOutcome = (reply.body as { resourceType?: string }).resourceType === "OperationOutcome";
    return c.body(JSON.stringify(reply.body), reply.status, { "content-type": isOutcome ? "application/fhir+json" : "application/json" });
  };

  return new Hono<AppEnv>().all("/:source", handle).all("/:source/:type/:id", handle);
}

const incomingOf = (c: Context<AppEnv>) => (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;

/**
 * Request headers by lowercase name. Under @hono/node-server, Node has parsed them already; asking
 * `c.req.header()` would first build a WHATWG Headers copy of all of them, on every request.
 */
function headerReader(c: Context<AppEnv>): (name: string) => string | undefined {
  const headers = (incomingOf(c) as Partial<IncomingMessage> | undefined)?.headers;
  if (headers === undefined) return (name) => c.req.header(name);
  return (name) => {
    const value = headers[name.toLowerCase()];
    return Array.isArray(value) ? value.join(", ") : value;
  };
}

const tooLong = (limit: number) => new AppError("too-long", `request body is larger than ${limit} bytes`);

/**
 * The raw body, refused past `limit` bytes without buffering the rest. Under @hono/node-server it
 * reads the Node request directly: going through `c.req.raw.body` builds a WHATWG Request and
 * stream per request, which costs more than all of intake's own work (measured with --cpu-prof).
 * Elsewhere (app.request in tests, other runtimes) it reads the web stream with the same limit.
 */
async function readBody(c: Context<AppEnv>, header: (name: string) => string | undefined, limit: number): Promise<Uint8Array> {
  const declared = header("content-length");
  if (declared !== undefined && header("transfer-encoding") === undefined && Number(declared) > limit) throw tooLong(limit);
  const incoming = incomingOf(c);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const take = (chunk: Uint8Array) => {
    size += chunk.byteLength;
    if (size > limit) throw tooLong(limit);
    chunks.push(chunk);
  };
  if (incoming !== undefined) {
    const rawBody = (incoming as { rawBody?: unknown }).rawBody;
    if (rawBody instanceof Buffer) take(rawBody); // set by some hosting wrappers that read the body first
    else await readIncoming(incoming, take);
  } else {
    const body = c.req.raw.body;
    if (body !== null) for await (const chunk of body as AsyncIterable<Uint8Array>) take(chunk);
  }
  if (chunks.length === 1) return chunks[0]!;
  return Buffer.concat(chunks, size);
}

/** What one body read needs; kept on the request so the listeners below are shared, not made per request. */
interface BodyRead {
  take(chunk: Buffer): void;
  resolve(): void;
  reject(err: Error): void;
}
const bodyRead = Symbol("fhir-notify body read");
type Reading = IncomingMessage & { [bodyRead]?: BodyRead };

/*
 * Module-level listeners (Node calls them with `this` = the request): an async iterator, or five
 * closures, per request cost measurably more on this hot path.
 */
function stopReading(incoming: Reading): BodyRead | undefined {
  const read = incoming[bodyRead];
  incoming.off("data", onData).off("end", onEnd).off("error", onError).off("aborted", onAborted);
  delete incoming[bodyRead];
  return read;
}
function onData(this: Reading, chunk: Buffer): void {
  try {
    this[bodyRead]?.take(chunk);
  } catch (err) {
    // Over the limit: stop buffering; @hono/node-server drains or closes the rest after our 413.
    const read = stopReading(this);
    this.pause();
    read?.reject(err instanceof Error ? err : new Error(String(err)));
  }
}
function onEnd(this: Reading): void {
  stopReading(this)?.resolve();
}
function onError(this: Reading, err: Error): void {
  stopReading(this)?.reject(err);
}
function onAborted(this: Reading): void {
  stopReading(this)?.reject(new Error("client aborted the request"));
}

function readIncoming(incoming: IncomingMessage, take: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    (incoming as Reading)[bodyRead] = { take, resolve, reject };
    incoming.on("data", onData).once("end", onEnd).once("error", onError).once("aborted", onAborted);
  });
}
