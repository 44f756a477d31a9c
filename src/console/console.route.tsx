import { Hono, type Context } from "hono";
import { html } from "hono/html";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { JSX } from "hono/jsx/jsx-runtime";
import { bodyLimit } from "hono/body-limit";
import type { FhirResource } from "fhir/r4";
import { z } from "zod";
import { setCookie } from "hono/cookie";
import type { AppEnv } from "../http/app-env.js";
import type { DeadLetters } from "../delivery/dead-letter.js";
import type { Ledger, LedgerRecord } from "../delivery/ledger.js";
import type { SenderState } from "../delivery/sender-state.js";
import type { TemplateHolds } from "../delivery/template-holds.js";
import type { QueueSnapshot } from "../http/routes/queue-health.js";
import type { ListedSubscription } from "../intake/subscriptions.js";
import { FhirError } from "../fhir/fhir.port.js";
import type { PreviewResult } from "../delivery/preview.js";
import { PreviewPage } from "./preview.js";
import type { TimelineIndex } from "../delivery/timeline-index.js";
import { consoleGuard, sameOriginOnly, sessionCookie, sessionValue } from "./guard.js";
import { Problem } from "./layout.js";
import { LoginPage } from "./login.js";
import { NotificationPage } from "./notification.js";
import { OperationsPage, ReplayConfirmPage } from "./operations.js";
import { consoleCss, consoleIcon } from "./style.js";
import { decodeCursor, filterOf, pageSize, timelineQuery, TimelinePageView } from "./timeline.js";

export interface ConsoleRule {
  id: string;
  templateName?: string;
}

export interface ConsoleDeps {
  ledger: Pick<Ledger, "get">;
  timeline: Pick<TimelineIndex, "page" | "counts" | "observe" | "remove">;
  rules: readonly ConsoleRule[];
  sources: readonly string[];
  deadLetters: Pick<DeadLetters, "list" | "replay">;
  senderState: Pick<SenderState, "status" | "halt" | "resume">;
  /** Queue depths (queue-health.ts, cached briefly). */
  queues(): Promise<QueueSnapshot>;
  /** Our Subscriptions on the FHIR server with their status and problem. */
  subscriptions(): Promise<ListedSubscription[]>;
  /** Every (template, language) the rules send. */
  templates: ReadonlyArray<{ templateName: string; languageCode: string }>;
  templateHolds: Pick<TemplateHolds, "heldFor">;
  /** POST /admin/preview's evaluation: rules, reasons, the rendered message; sends and stores nothing. */
  preview(resource: FhirResource): Promise<PreviewResult>;
  readResource(resourceType: string, id: string): Promise<FhirResource | undefined>;
  /** In sandbox mode: an example resource for the seeded patient, to preview with one click. */
  example?: () => FhirResource;
  bodyLimitBytes: number;
  adminToken: string | undefined;
  /** Absolute URL of a Communication on the FHIR server. */
  communicationUrl(id: string): string;
  /** config.http.publicUrl: the Origin a browser sends when the service sits behind a proxy. */
  publicUrl: string | undefined;
}

/**
 * Every console response: no script may run, styles and forms only from this origin, never framed.
 * The pages work without JavaScript (confirm steps are pages of their own).
 */
const csp = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/**
 * The web console for reviewers and integration engineers: server-rendered HTML (Hono JSX), GET
 * forms for filters, POST for actions. It shows only what the ledger and the queues hold: ids,
 * codes and fixed wording, never a clinical field.
 */
export function consoleRoute(deps: ConsoleDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(async (c, next) => {
    await next();
    // An unexpected failure (Redis not answering, a bug) was logged by the app's error handler as it
    // answered with an OperationOutcome; a reviewer's browser gets a page in fixed words instead.
    if (c.error !== undefined && c.res.status >= 500) c.res = await render(c, <Problem title="Unavailable" message="The console could not read its data just now (Redis or another backend did not answer). Try again; the service log has the error." />, 503);
    c.header("content-security-policy", csp);
    c.header("x-content-type-options", "nosniff");
    c.header("referrer-policy", "same-origin");
    c.header("cache-control", "no-store");
  });
  app.get("/console.css", (c) => c.body(consoleCss, 200, { "content-type": "text/css; charset=utf-8" }));
  app.get("/favicon.svg", (c) => c.body(consoleIcon, 200, { "content-type": "image/svg+xml" }));
  app.get("/login", (c) => render(c, <LoginPage />));
  // Behind a TLS-terminating proxy the request reaches us as http: PUBLIC_URL says what the browser used.
  const servedOverHttps = (requestUrl: string) => new URL(requestUrl).protocol === "https:" || (deps.publicUrl !== undefined && new URL(deps.publicUrl).protocol === "https:");
  app.post("/login", sameOriginOnly(deps.publicUrl), async (c) => {
    const token = deps.adminToken;
    if (token === undefined) return c.redirect("/console", 303);
    const form = await c.req.parseBody();
    const given = typeof form.token === "string" ? form.token : "";
    if (sessionValue(given) !== sessionValue(token)) return render(c, <LoginPage failed />, 401);
    setCookie(c, sessionCookie, sessionValue(token), { httpOnly: true, sameSite: "Strict", path: "/console", secure: servedOverHttps(c.req.url) });
    return c.redirect("/console", 303);
  });
  app.use(consoleGuard(deps.adminToken));
  app.use(sameOriginOnly(deps.publicUrl));
  // A preview body is one FHIR resource: the same limit as FHIR notifications and /admin/preview.
  app.use(
    bodyLimit({
      maxSize: deps.bodyLimitBytes,
      onError: (c) => render(c, <Problem title="Too large" message={`The form is larger than ${deps.bodyLimitBytes} bytes.`} />, 413),
    }),
  );

  app.get("/", async (c) => {
    const parsed = timelineQuery.safeParse(c.req.query());
    const cursor = parsed.success ? decodeCursor(parsed.data.after) : "invalid";
    if (!parsed.success || cursor === "invalid") {
      const field = parsed.success ? "after" : String(parsed.error.issues[0]?.path[0] ?? "query");
      return render(c, <Problem title="Timeline" message={`The filter "${field}" is not valid. Pick values from the form.`} />, 400);
    }
    const filter = filterOf(parsed.data);
    const [counts, page] = await Promise.all([deps.timeline.counts(filter), deps.timeline.page(filter, cursor, pageSize)]);
    const records = await readAndHeal(deps, page.ids);
    return render(c, <TimelinePageView view={{ query: parsed.data, counts, page, records, rules: deps.rules, sources: deps.sources }} />);
  });
  app.get("/operations", async (c) => {
    const [sender, deadLetters, queues, templates, subscriptions] = await Promise.all([
      deps.senderState.status(),
      deps.deadLetters.list(),
      deps.queues(),
      Promise.all(deps.templates.map(async (t) => ({ ...t, hold: await deps.templateHolds.heldFor(t.templateName, t.languageCode) }))),
      // The FHIR server being down must not take the rest of the page with it.
      deps.subscriptions().catch(() => undefined),
    ]);
    const done = doneWords(c.req.query("done"));
    return render(c, <OperationsPage view={{ sender, deadLetters, queues, templates, subscriptions, ...(done !== undefined ? { done } : {}) }} />);
  });
  app.get("/operations/dlq/:id/replay", async (c) => {
    const id = c.req.param("id");
    const entries = await deps.deadLetters.list(10_000);
    const chosen = id === "all" ? entries : entries.filter((e) => e.id === id);
    if (chosen.length === 0) return render(c, <Problem title="Replay" message="That dead letter is no longer in the queue (replayed or removed)." back="/console/operations" />, 404);
    return render(c, <ReplayConfirmPage entries={chosen} all={id === "all"} />);
  });
  app.post("/operations/dlq/replay", async (c) => {
    const form = await c.req.parseBody({ all: true });
    const ids = [form.id ?? []].flat().filter((v): v is string => typeof v === "string" && v.length > 0 && v.length <= 256);
    if (form.all !== "1" && ids.length === 0) return render(c, <Problem title="Replay" message="Choose what to replay from the dead-letter list." back="/console/operations" />, 400);
    const result = await deps.deadLetters.replay(form.all === "1" ? undefined : ids);
    return c.redirect(`/console/operations?done=replayed.${result.replayed}.${result.missing}`, 303);
  });
  app.post("/operations/sender/pause", async (c) => {
    await deps.senderState.halt("paused by an operator from the console", undefined);
    return c.redirect("/console/operations?done=paused", 303);
  });
  app.post("/operations/sender/resume", async (c) => {
    await deps.senderState.resume();
    return c.redirect("/console/operations?done=resumed", 303);
  });
  app.get("/preview", (c) => {
    const example = c.req.query("example") === "appointment" && deps.example !== undefined ? JSON.stringify(deps.example(), null, 2) : undefined;
    return render(c, <PreviewPage form={example !== undefined ? { json: example } : {}} hasExample={deps.example !== undefined} />);
  });
  app.post("/preview", async (c) => {
    const form = await c.req.parseBody();
    const text = (v: unknown) => (typeof v === "string" ? v.trim() : "");
    const hasExample = deps.example !== undefined;
    const json = text(form.json);
    const answer = (problem: string, status: 400 | 404 | 503, shown: { type?: string; id?: string } = {}) => render(c, <PreviewPage form={shown} problem={problem} hasExample={hasExample} />, status);
    let resource: FhirResource;
    let shown: { type?: string; id?: string } = {};
    if (json !== "") {
      let parsed: unknown;
      try {
        parsed = JSON.parse(json);
      } catch {
        return answer("That is not valid JSON.", 400);
      }
      const shape = resourceShape.safeParse(parsed);
      if (!shape.success) return answer("That is not a FHIR resource: it needs a resourceType.", 400);
      resource = shape.data as unknown as FhirResource;
    } else {
      const ref = fhirRef.safeParse({ type: text(form.type), id: text(form.id) });
      if (!ref.success) return answer("Paste a resource, or give a resource type (e.g. Appointment) and an id.", 400);
      shown = ref.data;
      try {
        const read = await deps.readResource(ref.data.type, ref.data.id);
        if (read === undefined) return answer(`The FHIR server has no ${ref.data.type}/${ref.data.id}.`, 404, shown);
        resource = read;
      } catch (err) {
        if (err instanceof FhirError) return answer("The FHIR server could not be read just now.", 503, shown);
        throw err;
      }
    }
    try {
      return render(c, <PreviewPage form={shown} result={await deps.preview(resource)} hasExample={hasExample} />);
    } catch (err) {
      if (err instanceof FhirError) return answer("The FHIR server could not be read for the references this resource needs.", 503, shown);
      throw err;
    }
  });
  app.get("/notifications/:id", async (c) => {
    const record = await deps.ledger.get(c.req.param("id"));
    if (record === undefined) return render(c, <Problem title="Notification" message="No notification with this id: it never existed or its retention ended." />, 404);
    await deps.timeline.observe(record.deliveryId, record.state);
    return render(c, <NotificationPage record={record} communicationUrl={record.communicationId !== undefined ? deps.communicationUrl(record.communicationId) : undefined} />);
  });
  return app;
}

const resourceShape = z.looseObject({ resourceType: z.string().regex(/^[A-Z][A-Za-z]+$/), id: z.string().optional() });
const fhirRef = z.object({ type: z.string().regex(/^[A-Z][A-Za-z]{1,63}$/), id: z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/) });

/** A whole page: the doctype first (standards mode), then the rendered JSX. */
function render(c: Context, node: JSX.Element, status: ContentfulStatusCode = 200) {
  return c.html(html`<!doctype html>${node}`, status);
}

/** The notice after an action (POST, then a redirect here): fixed words for a fixed set of codes. */
function doneWords(code: string | undefined): string | undefined {
  if (code === "paused") return "Sending is paused. Waiting messages stay queued until you resume.";
  if (code === "resumed") return "Sending resumed.";
  const replayed = /^replayed\.(\d{1,6})\.(\d{1,6})$/.exec(code ?? "");
  if (replayed !== null) return `Replayed ${replayed[1]} job(s)${replayed[2] !== "0" ? `; ${replayed[2]} were no longer there to retry` : ""}.`;
  return undefined;
}

/**
 * The page's records from the ledger (the truth), and the index put right where it lags: a record
 * whose retention ended leaves the index, a state the index missed (a crash between the ledger
 * write and the index write) moves it on.
 */
async function readAndHeal(deps: Pick<ConsoleDeps, "ledger" | "timeline">, ids: readonly string[]): Promise<LedgerRecord[]> {
  const records = await Promise.all(ids.map((id) => deps.ledger.get(id)));
  const found: LedgerRecord[] = [];
  await Promise.all(
    records.map(async (r, i) => {
      if (r === undefined) return deps.timeline.remove(ids[i]!);
      found.push(r);
      return deps.timeline.observe(r.deliveryId, r.state);
    }),
  );
  const order = new Map(ids.map((id, i) => [id, i]));
  return found.sort((a, b) => order.get(a.deliveryId)! - order.get(b.deliveryId)!);
}


