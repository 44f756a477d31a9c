import { z } from "zod";
import { clinicalTermIn } from "./leak-guard.js";
import type { YamlDoc, FieldPath } from "./yaml-source.js";

/**
 * Template files (mappings/templates/*.yaml) are the text submitted to Meta for approval, one
 * entry per language. Limits and wording rules: whatsapp-cloud-api.md §3.2 and §11.
 */
const buttonSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("QUICK_REPLY"), text: z.string().min(1).max(25) }).strict(),
  z
    .object({
      type: z.literal("URL"),
      text: z.string().min(1).max(25),
      /**
       * The link's path under mapping.portal.url, e.g. /s/{{1}}: the site's portal address comes
       * from config, so the shipped templates work for every site. A full `url` is still accepted
       * for a site's own templates; it must then start with portal.url.
       */
      path: z.string().max(500).regex(/^\/[^\s{}]*\{\{1\}\}$/, "must be a path such as /s/{{1}}, ending in {{1}} (the opaque token)").optional(),
      url: z.string().max(2000).regex(/^https:\/\/[^\s{}]+\{\{1\}\}$/, "must be an https URL ending in {{1}} (the opaque token)").optional(),
      example: z.string().min(1).max(100),
    })
    .strict()
    .refine((b) => (b.path === undefined) !== (b.url === undefined), { message: "set exactly one of path (under mapping.portal.url) or url", path: ["path"] }),
]);

const languageSchema = z
  .object({
    body: z.string().min(1).max(1024),
    footer: z.string().min(1).max(60).regex(/^[^{}]*$/, "footers cannot hold variables").optional(),
    buttons: z.array(buttonSchema).max(10).default([]),
    /** Sample values Meta requires for review, one per {{n}}. */
    example: z.array(z.string().min(1)).default([]),
  })
  .strict();

const templateSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9_]{1,512}$/, "lowercase letters, digits and underscores only"),
    category: z.literal("UTILITY", "fhir-notify sends utility templates only"),
    description: z.string().optional(),
    /** Utility maximum is 43200 s (12 h); a reminder must never arrive after the visit. */
    messageSendTtlSeconds: z.number().int().min(30).max(43200).optional(),
    languages: z.record(z.string().regex(/^[a-z]{2,3}(_[A-Z]{2})?$/, "must be a Meta language code such as en_US"), languageSchema),
  })
  .strict();

export type TemplateButtonDef = z.output<typeof buttonSchema>;
export type TemplateLanguage = z.output<typeof languageSchema>;

export interface Template {
  readonly name: string;
  readonly file: string;
  readonly category: "UTILITY";
  readonly messageSendTtlSeconds: number | undefined;
  readonly languages: ReadonlyMap<string, TemplateLanguage>;
  /** Same in every language: the rule supplies one ordered value list for all of them. */
  readonly placeholderCount: number;
  readonly buttonTypes: readonly TemplateButtonDef["type"][];
  /** Line of each template document, for rule errors that point at it. */
  readonly fail: (path: FieldPath, message: string) => never;
}

export function parseTemplate(doc: YamlDoc, file: string): Template {
  const parsed = templateSchema.safeParse(doc.data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    doc.fail((issue?.path ?? []) as FieldPath, issue?.message ?? "invalid template");
  }
  const t = parsed.data;
  const entries = Object.entries(t.languages);
  if (entries.length === 0) doc.fail(["languages"], "at least one language is required");
  let placeholderCount: number | undefined;
  let buttonTypes: TemplateButtonDef["type"][] | undefined;
  for (const [code, lang] of entries) {
    const count = checkBody(lang.body, (m) => doc.fail(["languages", code, "body"], m));
    if (lang.example.length !== count) doc.fail(["languages", code, "example"], `needs ${count} sample values, one per {{n}}, found ${lang.example.length}`);
    const types = lang.buttons.map((b) => b.type);
    checkButtonOrder(types, (m) => doc.fail(["languages", code, "buttons"], m));
    if (placeholderCount === undefined) placeholderCount = count;
    else if (placeholderCount !== count) doc.fail(["languages", code, "body"], `has ${count} variables but other languages have ${placeholderCount}`);
    if (buttonTypes === undefined) buttonTypes = types;
    else if (buttonTypes.join() !== types.join()) doc.fail(["languages", code, "buttons"], "buttons must have the same types, in the same order, in every language");
  }
  lintFixedText(t, doc.fail);
  return {
    name: t.name,
    file,
    category: t.category,
    messageSendTtlSeconds: t.messageSendTtlSeconds,
    languages: new Map(entries),
    placeholderCount: placeholderCount ?? 0,
    buttonTypes: buttonTypes ?? [],
    fail: doc.fail,
  };
}

/** What a template's fixed-text error says; the term is our list's entry, never a patient's data. */
export function clinicalTermMessage(term: string): string {
  return `fixed text names '${term}', a clinical term (src/mapping/clinical-terms.ts): every patient it goes to would read it`;
}

/**
 * Fixed text reaches every patient the template goes to (and Meta's reviewers): the name, the
 * body around its variables, the footer, button texts and link paths, and the sample values.
 * None may hold a clinical term; the failure names the part, e.g. languages.es.buttons[1].text.
 */
function lintFixedText(t: z.output<typeof templateSchema>, fail: (path: FieldPath, message: string) => never): void {
  const check = (text: string, path: FieldPath): void => {
    const term = clinicalTermIn(text);
    if (term !== undefined) fail(path, clinicalTermMessage(term));
  };
  check(t.name, ["name"]);
  for (const [code, lang] of Object.entries(t.languages)) {
    check(lang.body.replace(/\{\{\d+\}\}/g, " "), ["languages", code, "body"]);
    if (lang.footer !== undefined) check(lang.footer, ["languages", code, "footer"]);
    lang.buttons.forEach((b, i) => {
      check(b.text, ["languages", code, "buttons", i, "text"]);
      if (b.type === "URL") {
        if (b.path !== undefined) check(b.path, ["languages", code, "buttons", i, "path"]);
        if (b.url !== undefined) check(b.url, ["languages", code, "buttons", i, "url"]);
        check(b.example, ["languages", code, "buttons", i, "example"]);
      }
    });
    lang.example.forEach((e, i) => check(e, ["languages", code, "example", i]));
  }
}

/** Validates positional variables ({{1}}..{{n}}, in order, not at either end, never adjacent) and returns n. */
function checkBody(body: string, fail: (message: string) => never): number {
  const found = [...body.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g)].map((m) => m[1] ?? "");
  found.forEach((v, i) => {
    if (v !== String(i + 1)) fail(`variables must be positional {{1}}, {{2}}, ... in order; found {{${v}}} at position ${i + 1}`);
  });
  if (/[{}]/.test(body.replace(/\{\{\d+\}\}/g, ""))) fail("stray { or } outside a {{n}} variable");
  const trimmed = body.trim();
  if (found.length > 0 && (trimmed.startsWith("{{") || trimmed.endsWith("}}"))) fail("a variable cannot start or end the body (Meta error 2388299)");
  if (/\}\}\s*\{\{/.test(body)) fail("two variables cannot be adjacent");
  return found.length;
}

function checkButtonOrder(types: readonly string[], fail: (message: string) => never): void {
  if (types.filter((t) => t === "URL").length > 2) fail("at most 2 URL buttons");
  // Quick replies must be grouped together, all before or all after the other buttons.
  const runs = types.filter((t, i) => i === 0 || types[i - 1] !== t);
  if (runs.filter((t) => t === "QUICK_REPLY").length > 1) fail("quick-reply buttons must be grouped together");
}

/** The URL Meta gets for a URL button: the site's portal plus the template's path, or the template's own url. */
export function buttonUrl(button: Extract<TemplateButtonDef, { type: "URL" }>, portalUrl: string): string {
  return button.url ?? `${portalUrl.replace(/\/+$/, "")}${button.path ?? ""}`;
}

/** Bodies of POST /{WABA-id}/message_templates, one per language (whatsapp-cloud-api.md §11), for a site's portal. */
export function toMetaTemplateRequests(template: Template, portalUrl: string): unknown[] {
  return [...template.languages].map(([language, lang]) => ({
    name: template.name,
    language,
    category: template.category,
    ...(template.messageSendTtlSeconds !== undefined ? { message_send_ttl_seconds: String(template.messageSendTtlSeconds) } : {}),
    components: [
      { type: "BODY", text: lang.body, ...(lang.example.length > 0 ? { example: { body_text: [lang.example] } } : {}) },
      ...(lang.footer !== undefined ? [{ type: "FOOTER", text: lang.footer }] : []),
      ...(lang.buttons.length > 0
        ? [
            {
              type: "BUTTONS",
              buttons: lang.buttons.map((b) =>
                b.type === "URL" ? { type: "URL", text: b.text, url: buttonUrl(b, portalUrl), example: [b.example] } : { type: "QUICK_REPLY", text: b.text },
              ),
            },
          ]
        : []),
    ],
  }));
}

/** The body with values substituted: what the patient reads, kept for the audit trail. */
export function renderBody(lang: TemplateLanguage, values: readonly string[]): string {
  const body = lang.body.replace(/\{\{(\d+)\}\}/g, (_, n: string) => values[Number(n) - 1] ?? "");
  return lang.footer !== undefined ? `${body}\n${lang.footer}` : body;
}
