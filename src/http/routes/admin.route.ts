import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { FhirResource } from "fhir/r4";
import { z } from "zod";
import type { AppEnv } from "../app-env.js";
import { AppError } from "../../shared/app-error.js";
import type { Ledger } from "../../delivery/ledger.js";
import type { DeadLetters } from "../../delivery/dead-letter.js";
import type { SenderState } from "../../delivery/sender-state.js";
import type { OutboxEntry } from "../../delivery/whatsapp/dry-run.outbox.js";
import type { UnknownOutcomes } from "../../delivery/unknown-outcomes.js";

export interface AdminDeps {
  ledger: Ledger;
  deadLetters: DeadLetters;
  senderState: SenderState;
  /** Sends whose outcome is unknown, waiting for a status webhook or the reconcile window. */
  unknownOutcomes: Pick<UnknownOutcomes, "list" | "pending">;
  /** Present only in dry-run mode. */
  outbox: { list(): OutboxEntry[] } | undefined;
  preview(resource: FhirResource): Promise<unknown>;
  /** Absolute URL of a Communication on the FHIR server, for links. */
  communicationUrl(id: string): string;
}

const resourceShape = z.looseObject({ resourceType: z.string().regex(/^[A-Z][A-Za-z]+$/), id: z.string().optional() });
const replayBody = z.object({ ids: z.array(z.string().max(256)).max(10_000).optional() }).strict();

async function readJson(c: { req: { text(): Promise<string> } }): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new AppError("structure", "body is not valid JSON");
  }
}

/** application/json, application/fhir+json or any other +json type, with or without parameters. */
const jsonContentType = /^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i;

/** Operator API: what was sent (dry-run outbox), why something was or was not sent, and DLQ replay. */
export function adminRoute(deps: AdminDeps, bodyLimitBytes: number): Hono<AppEnv> {
  // Same limit as FHIR notifications: a preview body is one FHIR resource (or a small Bundle).
  const limit = bodyLimit({
    maxSize: bodyLimitBytes,
    onError: () => {
      throw new AppError("too-long", `request body is larger than ${bodyLimitBytes} bytes`);
    },
  });
  return new Hono<AppEnv>()
    .use("/preview", limit)
    .use("/dlq/replay", limit)
    .get("/outbox", (c) => {
      if (deps.outbox === undefined) throw new AppError("not-found", "the outbox exists only in dry-run mode (no WhatsApp credentials configured)");
      const entries = deps.outbox.list();
      return c.json({ count: entries.length, entries });
    })
    .post("/preview", async (c) => {
      if (!jsonContentType.test(c.req.header("content-type") ?? "")) throw new AppError("not-supported", "content type must be application/json or application/fhir+json", "content-type");
      const parsed = resourceShape.safeParse(await readJson(c));
      if (!parsed.success) throw new AppError("invalid", "body must be a FHIR resource with a resourceType", "resourceType");
      return c.json(await deps.preview(parsed.data as unknown as FhirResource));
    })
    .get("/notifications", async (c) => {
      const limit = Math.min(Math.max(Number(c.req.query("limit") ?? 50) || 50, 1), 500);
      const ids = await deps.ledger.recent(limit);
      const records = await Promise.all(ids.map((id) => deps.ledger.get(id)));
      return c.json({
        notifications: records
          .filter((r) => r !== undefined)
          .map((r) => ({ deliveryId: r.deliveryId, ruleId: r.ruleId, resource: r.resourceRef, state: r.state, reason: r.reason, ...(r.missingSlot !== undefined ? { missingSlot: r.missingSlot } : {}), ...(r.phiGuard !== undefined ? { phiGuard: r.phiGuard } : {}), updatedAt: r.updatedAt })),
      });
    })
    .get("/notifications/:id", async (c) => {
      const record = await deps.ledger.get(c.req.param("id"));
      if (record === undefined) throw new AppError("not-found", "no notification with this id", "id");
      // The rendered text stays out of this view; the Communication on the FHIR server holds it.
      const { renderedText: _text, distinctBy: _distinct, ...rest } = record;
      return c.json({
        ...rest,
        ...(record.communicationId !== undefined ? { communication: deps.communicationUrl(record.communicationId) } : {}),
      });
    })
    .get("/unknown-outcomes", async (c) => {
      const limit = Math.min(Math.max(Number(c.req.query("limit") ?? 100) || 100, 1), 1_000);
      const [count, entries] = await Promise.all([deps.unknownOutcomes.pending(), deps.unknownOutcomes.list(limit)]);
      return c.json({ count, entries });
    })
    .get("/dlq", async (c) => c.json({ entries: await deps.deadLetters.list() }))
    .post("/dlq/replay", async (c) => {
      const body = replayBody.safeParse(await readJson(c));
      if (!body.success) throw new AppError("invalid", "body must be {} or {\"ids\": [...]}", "ids");
      return c.json(await deps.deadLetters.replay(body.data.ids));
    })
    .get("/sender", async (c) => c.json(await deps.senderState.status()))
    .post("/sender/resume", async (c) => {
      await deps.senderState.resume();
      return c.json(await deps.senderState.status());
    });
}
