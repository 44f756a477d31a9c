import type { Logger } from "../../shared/logger.js";
import { toCloudApiRequest } from "./cloud-api.request.js";
import { cloudApiTemplateRequestSchema, errorEnvelopeSchema, firstIssuePath, phoneNumberHealthSchema, sendResponseSchema } from "./cloud-api.schema.js";
import { graphUrl } from "./graph-url.js";
import { createKeepAliveTransport, type Transport, type TransportResponse } from "./keep-alive-transport.js";
import { classify, retryAfterMsFor, toAcceptedStatus } from "./status.map.js";
import { SendError, type SendResult, type WhatsAppSender } from "./whatsapp.port.js";
import type { TemplateMessage } from "../../shared/template-message.js";

export interface CloudApiClientConfig {
  apiBase: string;
  graphVersion: string;
  phoneNumberId: string;
  accessToken: string;
  timeoutMs: number;
}

/**
 * Thin typed client for the one Cloud API call we make (whatsapp-cloud-api.md §10.1): no SDK, one
 * HTTP POST with a timeout on pooled keep-alive sockets, zod on both sides, every failure a
 * SendError classified by Meta's code.
 * Logs carry ids, HTTP status, Meta's code and fbtrace_id; never the token, number, or any text.
 */
export function createCloudApiClient(cfg: CloudApiClientConfig, log: Logger, transport: Transport = createKeepAliveTransport()): WhatsAppSender {
  const url = graphUrl(cfg, cfg.phoneNumberId, "/messages");
  const clientLog = log.child({ component: "whatsapp-client", phoneNumberId: cfg.phoneNumberId });

  async function sendTemplate(msg: TemplateMessage): Promise<SendResult> {
    const parsed = cloudApiTemplateRequestSchema.safeParse(toCloudApiRequest(msg));
    if (!parsed.success) {
      // Meta would reject it (§3.3); failing here costs nothing and keeps the number's quality intact.
      throw new SendError("template", `template request is invalid at ${firstIssuePath(parsed.error)}`);
    }
    const callLog = clientLog.child({ callbackData: msg.callbackData, template: msg.templateName });

    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), cfg.timeoutMs);
    let response: TransportResponse;
    let text: string;
    try {
      response = await transport(url, {
        method: "POST",
        headers: { authorization: `Bearer ${cfg.accessToken}`, "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify(parsed.data),
        signal: controller.signal,
      });
      // Reading the body is part of the call: a timeout or reset here also happens after the send.
      text = await response.text();
    } catch (err) {
      const phase = transportPhase(err);
      callLog.warn({ phase, cause: errorCode(err) }, "cloud api send failed in transport");
      throw new SendError(
        "transient",
        phase === "before_send" ? "cloud api unreachable before the request was sent" : "cloud api call failed after the request was sent",
        { phase },
        { cause: err },
      );
    } finally {
      clearTimeout(timer);
    }

    if (response.ok) {
      const ok = sendResponseSchema.safeParse(safeJson(text));
      const first = ok.success ? ok.data.messages[0] : undefined;
      if (first === undefined) {
        // A 2xx means Meta may have accepted the message; without a wamid the outcome is unknown.
        callLog.error({ status: response.status }, "cloud api answered 2xx without a message id");
        throw new SendError("transient", "cloud api accepted the request but returned no message id", { phase: "after_send" });
      }
      const messageStatus = toAcceptedStatus(first.message_status);
      const waId = ok.success ? ok.data.contacts?.[0]?.wa_id : undefined;
      callLog.info({ wamid: first.id, messageStatus }, "cloud api accepted the message");
      return { wamid: first.id, messageStatus, ...(waId !== undefined ? { waId } : {}) };
    }

    const envelope = errorEnvelopeSchema.safeParse(safeJson(text));
    if (envelope.success) {
      const { code, fbtrace_id: fbtraceId } = envelope.data.error;
      const failure = classify(code);
      const retryAfterMs = retryAfterMsFor(code, 0);
      callLog.warn({ status: response.status, code, fbtraceId, failure }, "cloud api rejected the message");
      throw new SendError(failure, `cloud api rejected the message with code ${code}`, {
        code,
        ...(fbtraceId !== undefined ? { fbtraceId } : {}),
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      });
    }

    // No Meta JSON: a proxy, load balancer or outage answered.
    callLog.warn({ status: response.status }, "cloud api answered without a Meta error body");
    if (response.status === 429) {
      throw new SendError("rate-limited", "cloud api answered 429", { retryAfterMs: retryAfterHeaderMs(response.headers.get("retry-after")) ?? 1000 });
    }
    if (response.status >= 500) {
      // Meta answers its own failures with its error JSON; a 5xx without it comes from a proxy or
      // load balancer in front of Graph that did not pass the request on, so nothing was sent and
      // the retry is safe (the FHIR client reads a bare 503 the same way). No phase: not in doubt.
      throw new SendError("transient", `cloud api answered ${response.status} without a Meta error body`);
    }
    throw new SendError("unknown", `cloud api answered ${response.status}`);
  }

  return { mode: "live", sendTemplate };
}

/**
 * Health probe before closing a "halt" circuit (§7.4): does the token still read the number?
 * Never throws; any failure is false.
 */
export async function probeSender(cfg: CloudApiClientConfig, log: Logger, transport: Transport = createKeepAliveTransport({ maxSockets: 1 })): Promise<boolean> {
  const url = graphUrl(cfg, cfg.phoneNumberId, "?fields=quality_rating,throughput");
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), cfg.timeoutMs);
  try {
    const res = await transport(url, { method: "GET", headers: { authorization: `Bearer ${cfg.accessToken}`, accept: "application/json" }, signal: controller.signal });
    const body = safeJson(await res.text());
    if (!res.ok) {
      const envelope = errorEnvelopeSchema.safeParse(body);
      log.warn({ status: res.status, code: envelope.success ? envelope.data.error.code : undefined }, "whatsapp sender probe failed");
      return false;
    }
    const health = phoneNumberHealthSchema.safeParse(body);
    if (!health.success) return false;
    log.info({ qualityRating: health.data.quality_rating, throughput: health.data.throughput?.level }, "whatsapp sender probe succeeded");
    return true;
  } catch (err) {
    log.warn({ cause: errorCode(err) }, "whatsapp sender probe failed in transport");
    return false;
  } finally {
    clearTimeout(timer);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function retryAfterHeaderMs(value: string | null): number | undefined {
  if (value === null || !/^\d{1,6}$/.test(value.trim())) return undefined;
  return Number(value.trim()) * 1000;
}

/**
 * Errors that prove the request never left this host: nothing can have been sent, so a retry is
 * safe. Anything else (timeouts, resets, unknown causes) might have reached Meta.
 */
const beforeSendCodes = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_FAIL",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
  "CERT_HAS_EXPIRED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

function transportPhase(err: unknown): "before_send" | "after_send" {
  const codes = collectCodes(err);
  if (codes.length > 0 && codes.every((c) => beforeSendCodes.has(c))) return "before_send";
  return "after_send";
}

function errorCode(err: unknown): string | undefined {
  const codes = collectCodes(err);
  if (codes.length > 0) return codes[0];
  return err instanceof Error ? err.name : undefined;
}

/** Node puts the code on the error; fetch wraps it: TypeError("fetch failed") → cause (maybe an AggregateError) → code. */
function collectCodes(err: unknown, depth = 0): string[] {
  if (depth > 4 || typeof err !== "object" || err === null) return [];
  const out: string[] = [];
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string") out.push(code);
  const errors = (err as { errors?: unknown }).errors;
  if (Array.isArray(errors)) for (const inner of errors) out.push(...collectCodes(inner, depth + 1));
  if (out.length === 0) out.push(...collectCodes((err as { cause?: unknown }).cause, depth + 1));
  return out;
}
