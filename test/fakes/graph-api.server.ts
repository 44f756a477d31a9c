import { createHmac, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";

/**
 * A fake Graph API as a real HTTP server on loopback (whatsapp-cloud-api.md §10.6). It applies
 * Meta's send rules with Meta's error codes and HTTP statuses, can inject any fault per recipient,
 * and records every accepted message so a test can assert "sent exactly once".
 */

export interface ApprovedTemplate {
  name: string;
  language: string;
  category?: string;
  /** What GET message_templates reports (default APPROVED). Sends to a template not APPROVED fail as Meta's do. */
  status?: string;
  components: ({ type: "BODY"; text: string } | { type: "FOOTER"; text: string } | { type: "BUTTONS"; buttons: { type: "QUICK_REPLY" | "URL"; url?: string }[] })[];
}

/** The §11 example templates (English and Spanish) as Meta would hold them after approval. */
function exampleTemplates(): ApprovedTemplate[] {
  return JSON.parse(readFileSync(new URL("../fixtures/whatsapp/templates.json", import.meta.url), "utf8")) as ApprovedTemplate[];
}

interface ErrorCodeRow {
  code: number;
  http: number;
  title: string;
}
const errorCodes = JSON.parse(readFileSync(new URL("../fixtures/whatsapp/error-codes.json", import.meta.url), "utf8")) as ErrorCodeRow[];

/** What one recipient number makes the fake do instead of (or besides) a plain accept. */
export type FaultBehaviour =
  /** A Meta-shaped error; HTTP status from the §7.3 table unless given. */
  | { kind: "error"; code: number; httpStatus?: number; details?: string }
  /** A proxy-style answer: this status and no body (429, 502, 503, ...). */
  | { kind: "bare-status"; httpStatus: number; retryAfter?: string }
  /** Meta accepts the message but the answer comes late (never, until stop(), without delayMs). */
  | { kind: "slow"; delayMs?: number }
  /** Meta accepts the message, then the connection is reset before any answer. */
  | { kind: "reset" }
  /** Accepted but held by template / portfolio pacing. */
  | { kind: "held" }
  | { kind: "paused" };

export interface AcceptedMessage {
  to: string;
  template: string;
  language: string;
  bodyParams: string[];
  buttons: { subType: string; index: string; value: string }[];
  callbackData?: string;
  wamid: string;
  messageStatus: "accepted" | "held_for_quality_assessment" | "paused";
}

export interface SeenRequest {
  method: string;
  path: string;
  status: number;
  to?: string;
}

export interface FakeGraphApiOptions {
  phoneNumberId?: string;
  businessAccountId?: string;
  accessToken?: string;
  templates?: ApprovedTemplate[];
}

export interface FakeGraphApi {
  /** Origin, e.g. http://127.0.0.1:53817 — use as apiBase. */
  url: string;
  phoneNumberId: string;
  /** The WABA whose template list GET /{version}/{id}/message_templates serves. */
  businessAccountId: string;
  accessToken: string;
  /** What Meta holds (mutable: a test can pause, recategorise or remove one). */
  templates: ApprovedTemplate[];
  /** Every accepted message, in order. */
  records: AcceptedMessage[];
  /** Every request with the status it got (0: reset or unanswered). */
  requests: SeenRequest[];
  /** Make sends to this number behave so; `times` limits how many requests it applies to. */
  inject(toNumber: string, behaviour: FaultBehaviour, times?: number): void;
  clearFaults(): void;
  /** How many messages were accepted for this number. */
  sentTo(toNumber: string): number;
  /** Make the GET /{phone-number-id} health probe fail with this Meta code (undefined: healthy). */
  setProbeError(code: number | undefined): void;
  stop(): Promise<void>;
}

const textParam = z.looseObject({ type: z.literal("text"), text: z.string(), parameter_name: z.string().optional() });
const requestShape = z.looseObject({
  messaging_product: z.literal("whatsapp"),
  recipient_type: z.string().optional(),
  to: z.string().min(1),
  type: z.literal("template"),
  biz_opaque_callback_data: z.string().optional(),
  template: z.looseObject({
    name: z.string().min(1),
    language: z.looseObject({ code: z.string().min(1) }),
    components: z
      .array(
        z.union([
          z.looseObject({ type: z.literal("body"), parameters: z.array(textParam) }),
          z.looseObject({
            type: z.literal("button"),
            sub_type: z.enum(["quick_reply", "url"]),
            index: z.union([z.string(), z.number()]),
            parameters: z.array(z.union([z.looseObject({ type: z.literal("payload"), payload: z.string() }), textParam])).length(1),
          }),
        ]),
      )
      .default([]),
  }),
});

const sendPath = /^\/(v\d+\.0)\/([^/]+)\/messages$/;
const nodePath = /^\/(v\d+\.0)\/([^/]+)$/;
const templateListPath = /^\/(v\d+\.0)\/([^/]+)\/message_templates$/;
const whitespaceRule = /[\n\r\t]| {5,}/;

export async function startFakeGraphApi(opts: FakeGraphApiOptions = {}): Promise<FakeGraphApi> {
  const phoneNumberId = opts.phoneNumberId ?? "200000000000002";
  const businessAccountId = opts.businessAccountId ?? "102290129340398";
  const accessToken = opts.accessToken ?? "EAAG-test-system-user-token";
  const templates = opts.templates ?? exampleTemplates();
  const records: AcceptedMessage[] = [];
  const requests: SeenRequest[] = [];
  const faults = new Map<string, { behaviour: FaultBehaviour; remaining: number }>();
  const pending = new Set<{ timer?: NodeJS.Timeout; res: ServerResponse }>();
  let probeError: number | undefined;

  function metaError(res: ServerResponse, seen: SeenRequest, code: number, httpStatus?: number, details?: string): void {
    const row = errorCodes.find((r) => r.code === code);
    const status = httpStatus ?? row?.http ?? 400;
    const title = row?.title ?? "Unknown error";
    seen.status = status;
    res.writeHead(status, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        error: {
          message: `(#${code}) ${title}`,
          type: "OAuthException",
          code,
          error_data: { messaging_product: "whatsapp", details: details ?? title },
          fbtrace_id: `A${randomBytes(9).toString("base64url")}`,
        },
      }),
    );
  }

  function takeFault(to: string): FaultBehaviour | undefined {
    const f = faults.get(to);
    if (f === undefined) return undefined;
    f.remaining -= 1;
    if (f.remaining <= 0) faults.delete(to);
    return f.behaviour;
  }

  function authorised(req: IncomingMessage): boolean {
    return req.headers.authorization === `Bearer ${accessToken}`;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { pathname } = new URL(req.url ?? "/", "http://fake");
    const seen: SeenRequest = { method: req.method ?? "", path: pathname, status: 0 };
    requests.push(seen);
    const raw = await readBody(req);

    const list = templateListPath.exec(pathname);
    if (req.method === "GET" && list !== null) {
      if (!authorised(req)) return metaError(res, seen, 190, 401, "Invalid OAuth access token");
      if (list[2] !== businessAccountId) return metaError(res, seen, 100, 400, "Unsupported get request");
      // Meta's cursor paging: `limit` per page, `paging.next` while more remain.
      const query = new URL(req.url ?? "/", "http://fake").searchParams;
      const limit = Math.min(Number(query.get("limit") ?? 25) || 25, 1000);
      const after = Number(query.get("after") ?? 0) || 0;
      const page = templates.slice(after, after + limit).map((t, i) => ({ status: "APPROVED", category: "UTILITY", ...t, id: String(5_000_000 + after + i) }));
      const nextUrl = new URL(req.url ?? "/", `http://${req.headers.host ?? "127.0.0.1"}`);
      nextUrl.searchParams.set("after", String(after + limit));
      seen.status = 200;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ data: page, paging: { cursors: { before: String(after), after: String(after + limit) }, ...(after + limit < templates.length ? { next: nextUrl.toString() } : {}) } }));
      return;
    }

    const node = nodePath.exec(pathname);
    if (req.method === "GET" && node !== null) {
      if (!authorised(req)) return metaError(res, seen, 190, 401, "Invalid OAuth access token");
      if (node[2] !== phoneNumberId) return metaError(res, seen, 100, 400, "Unsupported get request");
      if (probeError !== undefined) return metaError(res, seen, probeError);
      seen.status = 200;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ quality_rating: "GREEN", throughput: { level: "STANDARD" }, id: phoneNumberId }));
      return;
    }

    const send = sendPath.exec(pathname);
    if (req.method !== "POST" || send === null) return metaError(res, seen, 100, 400, "Unknown path components");
    if (!authorised(req)) return metaError(res, seen, 190, 401, "Invalid OAuth access token");
    if (send[2] !== phoneNumberId) return metaError(res, seen, 100, 400, "Unsupported post request. Object does not exist");
    if (!(req.headers["content-type"] ?? "").startsWith("application/json")) return metaError(res, seen, 100, 400, "Invalid content type");

    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return metaError(res, seen, 100, 400, "Invalid JSON body");
    }
    const shape = requestShape.safeParse(json);
    if (!shape.success) return metaError(res, seen, 100, 400, "Invalid parameter");
    const body = shape.data;
    const to = body.to.replace(/^\+/, "");
    seen.to = to;

    const fault = takeFault(to);
    if (fault?.kind === "error") return metaError(res, seen, fault.code, fault.httpStatus, fault.details);
    if (fault?.kind === "bare-status") {
      seen.status = fault.httpStatus;
      res.writeHead(fault.httpStatus, fault.retryAfter !== undefined ? { "retry-after": fault.retryAfter } : {});
      res.end();
      return;
    }

    if (!/^\d{7,15}$/.test(to)) return metaError(res, seen, 131009, 400, "Recipient phone number is not valid");
    const template = templates.find((t) => t.name === body.template.name && t.language === body.template.language.code);
    if (template === undefined) return metaError(res, seen, 132001);
    if (template.status === "PAUSED") return metaError(res, seen, 132015);
    if (template.status === "DISABLED") return metaError(res, seen, 132016);

    const bodyText = template.components.flatMap((c) => (c.type === "BODY" ? [c.text] : []))[0] ?? "";
    const expected = new Set([...bodyText.matchAll(/\{\{(\d+)\}\}/g)].map((m) => m[1])).size;
    const bodyParams = body.template.components.flatMap((c) => (c.type === "body" ? c.parameters.map((p) => p.text) : []));
    if (bodyParams.length !== expected) return metaError(res, seen, 132000);
    if (bodyParams.some((p) => p.trim().length === 0)) return metaError(res, seen, 131008, 400, "Parameter text is required");
    if (bodyParams.some((p) => whitespaceRule.test(p))) {
      return metaError(res, seen, 132018, 400, "Param text cannot have new-line/tab characters or more than 4 consecutive spaces");
    }
    const hydrated = bodyText.replace(/\{\{(\d+)\}\}/g, (_, n: string) => bodyParams[Number(n) - 1] ?? "");
    if (hydrated.length > 1024) return metaError(res, seen, 132005);

    const templateButtons = template.components.flatMap((c) => (c.type === "BUTTONS" ? c.buttons : []));
    const buttons: AcceptedMessage["buttons"] = [];
    for (const c of body.template.components) {
      if (c.type !== "button") continue;
      const defined = templateButtons[Number(c.index)];
      const matches = defined !== undefined && (c.sub_type === "url" ? defined.type === "URL" && defined.url?.includes("{{1}}") === true : defined.type === "QUICK_REPLY");
      const p = c.parameters[0];
      const value = p === undefined ? "" : p.type === "payload" ? p.payload : p.text;
      if (!matches || value.length === 0) return metaError(res, seen, 131009, 400, "Button parameter does not match the template");
      if (c.sub_type === "url" && whitespaceRule.test(value)) {
        return metaError(res, seen, 132018, 400, "Param text cannot have new-line/tab characters or more than 4 consecutive spaces");
      }
      buttons.push({ subType: c.sub_type, index: String(c.index), value });
    }

    const messageStatus = fault?.kind === "held" ? "held_for_quality_assessment" : fault?.kind === "paused" ? "paused" : "accepted";
    const wamid = `wamid.HBgL${randomBytes(24).toString("base64url")}`;
    records.push({
      to,
      template: template.name,
      language: template.language,
      bodyParams,
      buttons,
      ...(body.biz_opaque_callback_data !== undefined ? { callbackData: body.biz_opaque_callback_data } : {}),
      wamid,
      messageStatus,
    });

    if (fault?.kind === "reset") {
      // The double-send case: Meta has the message, the caller never hears about it.
      req.socket.destroy();
      return;
    }
    const answer = () => {
      seen.status = 200;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ messaging_product: "whatsapp", contacts: [{ input: body.to, wa_id: to }], messages: [{ id: wamid, message_status: messageStatus }] }));
    };
    if (fault?.kind === "slow") {
      const hold: { timer?: NodeJS.Timeout; res: ServerResponse } = { res };
      if (fault.delayMs !== undefined) {
        hold.timer = setTimeout(() => {
          pending.delete(hold);
          if (!res.destroyed) answer();
        }, fault.delayMs);
      }
      pending.add(hold);
      return;
    }
    answer();
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    phoneNumberId,
    businessAccountId,
    accessToken,
    templates,
    records,
    requests,
    inject: (toNumber, behaviour, times = Number.POSITIVE_INFINITY) => {
      faults.set(toNumber.replace(/^\+/, ""), { behaviour, remaining: times });
    },
    clearFaults: () => faults.clear(),
    sentTo: (toNumber) => records.filter((r) => r.to === toNumber.replace(/^\+/, "")).length,
    setProbeError: (code) => {
      probeError = code;
    },
    stop: async () => {
      for (const p of pending) if (p.timer !== undefined) clearTimeout(p.timer);
      pending.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

// ---- Webhooks as Meta sends them -------------------------------------------------------------

/**
 * JSON the way Meta puts it on the wire: non-ASCII as lowercase \uXXXX escapes (UTF-16 code units,
 * so emoji become surrogate pairs) and "/" as "\/". Signing these exact bytes is the point.
 */
export function metaJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/[\u0080-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`)
    .replace(/\//g, "\\/");
}

/** X-Hub-Signature-256 value for these exact bytes. */
export function signWebhook(body: string | Uint8Array, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

export interface StatusSpec {
  wamid: string;
  status: "sent" | "delivered" | "read" | "failed" | "played";
  /** Unix seconds. */
  timestamp: number;
  recipientId?: string;
  userId?: string;
  callbackData?: string;
  errorCode?: number;
  /** statuses[].pricing; default: utility/regular on sent only, as Meta sends it. null: none. */
  pricing?: Record<string, unknown> | null;
}

const defaultWabaId = "100000000000001";

function envelope(phoneNumberId: string, value: Record<string, unknown>, wabaId = defaultWabaId): unknown {
  return {
    object: "whatsapp_business_account",
    entry: [
      {
        id: wabaId,
        changes: [
          { field: "messages", value: { messaging_product: "whatsapp", metadata: { display_phone_number: "15550001111", phone_number_id: phoneNumberId }, ...value } },
        ],
      },
    ],
  };
}

/** A `messages` webhook carrying these statuses, serialised like Meta (see metaJson). */
export function buildStatusWebhook(opts: { phoneNumberId: string; statuses: StatusSpec[]; wabaId?: string }): string {
  const statuses = opts.statuses.map((s) => ({
    id: s.wamid,
    status: s.status,
    timestamp: String(s.timestamp),
    ...(s.recipientId !== undefined ? { recipient_id: s.recipientId } : {}),
    // Meta's BSUID page names it recipient_user_id (the parser also reads the earlier user_id).
    ...(s.userId !== undefined ? { recipient_user_id: s.userId } : {}),
    ...(s.callbackData !== undefined ? { biz_opaque_callback_data: s.callbackData } : {}),
    ...(s.pricing !== undefined
      ? s.pricing === null
        ? {}
        : { pricing: s.pricing }
      : s.status === "sent"
        ? { pricing: { billable: true, pricing_model: "PMP", type: "regular", category: "utility" } }
        : {}),
    ...(s.errorCode !== undefined
      ? {
          errors: [
            {
              code: s.errorCode,
              title: "Message undeliverable",
              message: "Message undeliverable",
              error_data: { details: "Message could not be delivered to the recipient." },
              href: "https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes",
            },
          ],
        }
      : {}),
  }));
  return metaJson(envelope(opts.phoneNumberId, { statuses }, opts.wabaId));
}

/** A `messages` webhook carrying inbound messages (raw Meta message objects), serialised like Meta. */
export function buildInboundWebhook(opts: { phoneNumberId: string; messages: Record<string, unknown>[]; contacts?: Record<string, unknown>[] }): string {
  return metaJson(envelope(opts.phoneNumberId, { contacts: opts.contacts ?? [], messages: opts.messages }));
}
