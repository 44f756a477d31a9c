import { z } from "zod";
import { graphUrl } from "./graph-url.js";

/**
 * What Meta holds for our WhatsApp Business Account: GET /{version}/{WABA-id}/message_templates
 * (Business Management API), read page by page. Only the fields the comparison needs are asked
 * for; unknown fields Meta adds are ignored.
 */
const metaTemplateSchema = z.looseObject({
  name: z.string(),
  language: z.string(),
  status: z.string(),
  category: z.string(),
  components: z
    .array(
      z.looseObject({
        type: z.string(),
        text: z.string().optional(),
        buttons: z.array(z.looseObject({ type: z.string() })).optional(),
      }),
    )
    .default([]),
});

const pageSchema = z.looseObject({
  data: z.array(metaTemplateSchema),
  paging: z.looseObject({ next: z.string().optional() }).optional(),
});

export type MetaTemplate = z.output<typeof metaTemplateSchema>;

export interface TemplateCatalogConfig {
  apiBase: string;
  graphVersion: string;
  businessAccountId: string;
  accessToken: string;
  timeoutMs: number;
}

export class TemplateCatalogError extends Error {}

/** A WABA holds at most 6,000 templates; 100 per page, so 60 pages is every one of them. */
const maxPages = 60;

export async function fetchMetaTemplates(cfg: TemplateCatalogConfig, fetchImpl: typeof fetch = fetch): Promise<MetaTemplate[]> {
  let url: string | undefined = graphUrl(cfg, cfg.businessAccountId, "/message_templates?fields=name,language,status,category,components&limit=100");
  const origin = new URL(url).origin;
  const templates: MetaTemplate[] = [];
  for (let page = 0; url !== undefined; page++) {
    if (page === maxPages) throw new TemplateCatalogError(`more than ${maxPages} pages of templates; stopped reading`);
    // Paging links come from the response: follow them only to the API we were pointed at, so the token goes nowhere else.
    if (new URL(url).origin !== origin) throw new TemplateCatalogError("the template list's next page points at another host; not followed");
    let res: Response;
    try {
      res = await fetchImpl(url, { headers: { authorization: `Bearer ${cfg.accessToken}`, accept: "application/json" }, signal: AbortSignal.timeout(cfg.timeoutMs) });
    } catch (err) {
      throw new TemplateCatalogError(`cannot reach the Graph API at ${origin}: ${(err as Error).name === "TimeoutError" ? "timed out" : (err as Error).message}`);
    }
    const body: unknown = await res.json().catch(() => undefined);
    if (!res.ok) {
      const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      const code = typeof error?.code === "number" ? ` (code ${error.code})` : "";
      throw new TemplateCatalogError(`the Graph API answered HTTP ${res.status}${code} to the template list`);
    }
    const parsed = pageSchema.safeParse(body);
    if (!parsed.success) throw new TemplateCatalogError("the Graph API's template list is not in the expected shape");
    templates.push(...parsed.data.data);
    url = parsed.data.paging?.next;
  }
  return templates;
}
