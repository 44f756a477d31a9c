import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { FhirResource } from "fhir/r4";
import fhirpath from "fhirpath";
import r4Model from "fhirpath/fhir-context/r4/index.js";
import { z } from "zod";
import { triggerTypes, type TriggerType } from "../shared/trigger-type.js";
import { checkFhirPath, FhirPathRejected } from "./fhirpath-check.js";
import { clinicalTermIn } from "./leak-guard.js";
import type { ConditionKind } from "./logic-fields.js";
import type { PreviousProjection } from "./previous.js";
import { isSlotName, replyActions, slotAppliesTo, type ReplyAction, type SlotName } from "./slots.js";
import { parseTemplate, type Template } from "./templates.js";
import { MappingError, parseYamlDocs, type FieldPath, type YamlDoc } from "./yaml-source.js";

export { MappingError } from "./yaml-source.js";

/** A compiled FHIRPath condition. Compiled once at load; evaluated with %current and %previous. */
export interface Condition {
  readonly expression: string;
  /**
   * `now` is what FHIRPath now() returns: the injected clock, never the wall clock, so decisions
   * are reproducible. Malformed data that makes FHIRPath throw yields the empty collection.
   */
  evaluate(resource: FhirResource, previous: PreviousProjection | undefined, now: Date): unknown[];
}

export type SendAt = { readonly kind: "now" } | { readonly kind: "before-start"; readonly hours: number | undefined };
export type RuleButton = { readonly reply: ReplyAction } | { readonly link: "portalLink" };

export interface RuleMessage {
  readonly template: Template;
  readonly category: "notification" | "reminder";
  readonly send: SendAt;
  readonly distinctBy: readonly Condition[];
  readonly slots: readonly SlotName[];
  readonly buttons: readonly RuleButton[];
  /**
   * Replies that end this rule's messages still waiting for the same resource: a patient who
   * answered CONFIRM to one reminder is not asked to confirm again (`endedByReply: [CONFIRM]`).
   */
  readonly endedByReply: readonly ReplyWord[];
}

/** Reply words the service understands: the quick-reply actions (slots.ts), one list for both. */
export type ReplyWord = ReplyAction;

export interface Rule {
  readonly id: string;
  readonly file: string;
  readonly description: string | undefined;
  readonly resourceType: TriggerType;
  readonly enabled: boolean;
  /** Only active when the site's prescriptionReadySignal equals this. */
  readonly signal: "MedicationDispense" | "MedicationRequest-extension" | "Task" | undefined;
  /** All must hold (a list in YAML is a conjunction, evaluated in order, stopping at the first that fails). */
  readonly when: readonly Condition[];
  /** All must hold; empty means "any change". */
  readonly changedFrom: readonly Condition[];
  /**
   * `changes: [status, start]`: fires only for the first version seen or when one of these kept
   * fields differs from the previous version (instants compared as instants). Checked before changedFrom.
   */
  readonly changes: readonly ChangeField[];
  readonly suppress: readonly Condition[];
  readonly action: "send" | "cancel-pending";
  /** For cancel-pending: rule ids whose pending deliveries for this resource are removed. */
  readonly cancels: readonly string[];
  /** Present exactly when action is send. */
  readonly message: RuleMessage | undefined;
}

export interface MappingSet {
  readonly rules: readonly Rule[];
  readonly templates: ReadonlyMap<string, Template>;
  /** sha256 over every rule and template file (name and bytes): which rule set made a decision. */
  readonly rulesHash: string;
}

export interface LoadOptions {
  /** Meta language codes every template used by an enabled rule must provide (site config). */
  readonly languages?: readonly string[];
}

/**
 * A suppression list a hospital team can read: any coding of `element` with this system and one
 * of these codes silences the rule. Equivalent to
 * `element.coding.where(system = '…' and code in (…)).exists()`, checked the same way as FHIRPath.
 */
const codeListSchema = z
  .object({
    element: z.string().regex(/^[a-zA-Z]+(\.[a-zA-Z]+)*$/, "an element name such as code or serviceType"),
    system: z.string().min(1),
    codes: z.array(z.string().min(1)).min(1),
  })
  .strict();

const changeFields = ["status", "start", "end", "intent", "issued", "businessStatus"] as const;
export type ChangeField = (typeof changeFields)[number];

/** One FHIRPath condition, or a list that must all hold (easier to read, and cheaper: evaluation stops at the first false). */
const conditionList = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).transform((v) => (typeof v === "string" ? [v] : v));

/**
 * Rule ids travel further than the rule file: into delivery ids, logs, metrics' neighbours and
 * the Communication's extensions. Only plain lowercase words joined by single dashes, so an id
 * can never carry punctuation, spaces, a resource id's dots or anything that reads like a value.
 */
export const ruleIdPattern = /^(?=.{1,64}$)[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

const ruleSchema = z
  .object({
    id: z.string().regex(ruleIdPattern, "must be lowercase words joined by single dashes, starting with a letter, at most 64 characters (e.g. appointment-reminder)"),
    description: z.string().optional(),
    resourceType: z.enum(triggerTypes),
    enabled: z.boolean().default(true),
    signal: z.enum(["MedicationDispense", "MedicationRequest-extension", "Task"]).optional(),
    trigger: z
      .object({
        when: conditionList,
        changes: z.array(z.enum(changeFields, "only kept fields can be compared: status, start, end, intent, issued, businessStatus")).min(1).optional(),
        changedFrom: conditionList.optional(),
      })
      .strict(),
    suppress: z.array(z.union([z.string().min(1), codeListSchema])).default([]),
    action: z.enum(["send", "cancel-pending"]).default("send"),
    cancels: z.array(z.string().min(1)).default([]),
    template: z.string().min(1).optional(),
    category: z.enum(["notification", "reminder"]).optional(),
    send: z
      .union([z.literal("now"), z.object({ before: z.literal("start"), hours: z.number().int().min(1).max(168).optional() }).strict()])
      .optional(),
    distinctBy: z.array(z.string().min(1)).min(1).optional(),
    slots: z.array(z.string()).optional(),
    buttons: z
      .array(
        // One object shape (not a union) so a bad reply word is reported as itself, not as "invalid input".
        z
          .object({
            reply: z.enum(replyActions, `reply actions are ${replyActions.join(" or ")}: the only answers the WhatsApp webhook understands`).optional(),
            link: z.string().optional(),
          })
          .strict()
          .refine((b) => (b.reply === undefined) !== (b.link === undefined), "a button is either `reply: CONFIRM` or `link: portalLink`"),
      )
      .default([]),
    endedByReply: z.array(z.enum(replyActions, `a reply that ends messages is ${replyActions.join(" or ")}`)).optional(),
  })
  .strict();

type RawRule = z.output<typeof ruleSchema>;

/**
 * Read every rule (dir/*.yaml) and template (dir/templates/*.yaml), validate them against each
 * other and the safe-slot allowlist, and compile FHIRPath once. Any problem throws MappingError
 * naming file, line and field; `fhir-notify mappings check` prints exactly that message.
 */
export function loadMappingSet(dir: string, options: LoadOptions = {}): MappingSet {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new MappingError(`${dir}: mappings folder not found`);
  const hash = createHash("sha256");
  const read = (file: string): string => {
    const text = readFileSync(join(dir, file), "utf8");
    hash.update(file).update("\u0000").update(text).update("\u0000");
    return text;
  };

  const templates = new Map<string, Template>();
  const templateDir = join(dir, "templates");
  for (const name of yamlFiles(templateDir)) {
    const file = `templates/${name}`;
    const display = join(dir, file);
    for (const doc of parseYamlDocs(read(file), display)) {
      const template = parseTemplate(doc, display);
      if (templates.has(template.name)) doc.fail(["name"], `template '${template.name}' is defined twice`);
      templates.set(template.name, template);
    }
  }

  const clock = nowCell();
  const rules: Rule[] = [];
  const pendingChecks: (() => void)[] = [];
  for (const file of yamlFiles(dir)) {
    const display = join(dir, file);
    for (const doc of parseYamlDocs(read(file), display)) {
      const { rule, crossCheck } = parseRule(doc, display, templates, options, clock);
      if (rules.some((r) => r.id === rule.id)) doc.fail(["id"], `rule id '${rule.id}' is used twice`);
      rules.push(rule);
      pendingChecks.push(() => crossCheck(rules));
    }
  }
  if (rules.length === 0) throw new MappingError(`${dir}: no rule files (*.yaml) found`);
  for (const check of pendingChecks) check();
  return { rules, templates, rulesHash: hash.digest("hex") };
}

function yamlFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
    .map((e) => e.name)
    .sort();
}

function parseRule(
  doc: YamlDoc,
  file: string,
  templates: ReadonlyMap<string, Template>,
  options: LoadOptions,
  clock: NowCell,
): { rule: Rule; crossCheck: (all: readonly Rule[]) => void } {
  const parsed = ruleSchema.safeParse(doc.data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = (issue?.path ?? []) as FieldPath;
    if (issue?.code === "unrecognized_keys") {
      const key = issue.keys[0] ?? "";
      doc.fail([...path, key], `unknown field '${key}': rules choose named slots; they cannot name or render resource fields`);
    }
    doc.fail(path, issue?.message ?? "invalid rule");
  }
  const raw = parsed.data;
  // Rule ids travel with every delivery (delivery ids, logs, Communications), so they are fixed text too.
  const idTerm = clinicalTermIn(raw.id);
  if (idTerm !== undefined) doc.fail(["id"], `rule ids travel with every delivery and must not name '${idTerm}', a clinical term (src/mapping/clinical-terms.ts)`);
  const condition = (expression: string, path: FieldPath, kind: ConditionKind): Condition => compileCondition(doc, expression, path, raw.resourceType, kind, clock);
  const conjunction = (list: readonly string[], key: "when" | "changedFrom"): Condition[] =>
    list.map((expression, i) => condition(expression, list.length === 1 && typeof rawTrigger(doc)?.[key] === "string" ? ["trigger", key] : ["trigger", key, i], "trigger"));

  const when = conjunction(raw.trigger.when, "when");
  const changedFrom = raw.trigger.changedFrom !== undefined ? conjunction(raw.trigger.changedFrom, "changedFrom") : [];
  const suppress = raw.suppress.map((s, i) => (typeof s === "string" ? condition(s, ["suppress", i], "suppress") : codeList(doc, s, ["suppress", i], raw.resourceType)));

  let message: RuleMessage | undefined;
  if (raw.action === "send") {
    if (raw.cancels.length > 0) doc.fail(["cancels"], "only cancel-pending rules cancel other rules");
    message = parseMessage(doc, raw, templates, options, condition);
  } else {
    for (const key of ["template", "category", "send", "distinctBy", "slots"] as const) {
      if (raw[key] !== undefined) doc.fail([key], "a cancel-pending rule sends nothing; put the message in its own rule");
    }
    if (raw.buttons.length > 0) doc.fail(["buttons"], "a cancel-pending rule sends nothing");
    if (raw.endedByReply !== undefined) doc.fail(["endedByReply"], "a cancel-pending rule has no messages for a reply to end");
    if (raw.cancels.length === 0) doc.fail(["cancels"], "a cancel-pending rule must name the rule ids it cancels");
  }

  const rule: Rule = {
    id: raw.id,
    file,
    description: raw.description,
    resourceType: raw.resourceType,
    enabled: raw.enabled,
    signal: raw.signal,
    when,
    changedFrom,
    changes: raw.trigger.changes ?? [],
    suppress,
    action: raw.action,
    cancels: raw.cancels,
    message,
  };
  const crossCheck = (all: readonly Rule[]): void => {
    // A word no message of this resource type offers as a button can never arrive: a typo.
    raw.endedByReply?.forEach((word, i) => {
      const offered = all.some((r) => r.resourceType === raw.resourceType && r.message?.buttons.some((b) => "reply" in b && b.reply === word));
      if (!offered) doc.fail(["endedByReply", i], `no ${raw.resourceType} rule has a '${word}' reply button`);
    });
    raw.cancels.forEach((id, i) => {
      const target = all.find((r) => r.id === id);
      if (!target) doc.fail(["cancels", i], `unknown rule '${id}'`);
      if (target.resourceType !== raw.resourceType) doc.fail(["cancels", i], `rule '${id}' is for ${target.resourceType}, not ${raw.resourceType}`);
    });
  };
  return { rule, crossCheck };
}

function parseMessage(
  doc: YamlDoc,
  raw: RawRule,
  templates: ReadonlyMap<string, Template>,
  options: LoadOptions,
  condition: (expression: string, path: FieldPath, kind: ConditionKind) => Condition,
): RuleMessage {
  if (raw.template === undefined) doc.fail(["template"], "a send rule needs a template");
  if (raw.category === undefined) doc.fail(["category"], "a send rule needs a category (notification or reminder)");
  if (raw.distinctBy === undefined) doc.fail(["distinctBy"], "a send rule needs distinctBy, e.g. [id] or [id, start]");
  if (raw.slots === undefined) doc.fail(["slots"], "a send rule needs slots (an empty list if the template has no variables)");
  const template = templates.get(raw.template);
  if (!template) doc.fail(["template"], `unknown template '${raw.template}' (no such name in templates/)`);

  const slots = raw.slots.map((name, i): SlotName => {
    if (!isSlotName(name)) {
      doc.fail(
        ["slots", i],
        /^[A-Za-z]+$/.test(name)
          ? `unknown slot '${name}'`
          : `'${name}' is not a slot: messages can only carry named safe slots, never resource fields or expressions`,
      );
    }
    if (!slotAppliesTo[name].includes(raw.resourceType)) doc.fail(["slots", i], `slot '${name}' is not available for ${raw.resourceType}`);
    return name;
  });
  if (slots.length !== template.placeholderCount) {
    doc.fail(["slots"], `template '${template.name}' has ${template.placeholderCount} variables but the rule lists ${slots.length} slots`);
  }

  if (raw.buttons.length !== template.buttonTypes.length) {
    doc.fail(["buttons"], `template '${template.name}' has ${template.buttonTypes.length} buttons but the rule lists ${raw.buttons.length}`);
  }
  const buttons = raw.buttons.map((b, i): RuleButton => {
    const type = template.buttonTypes[i];
    if (b.reply !== undefined) {
      if (type !== "QUICK_REPLY") doc.fail(["buttons", i], `button ${i} of template '${template.name}' is ${type ?? "missing"}, not QUICK_REPLY`);
      return { reply: b.reply };
    }
    if (type !== "URL") doc.fail(["buttons", i], `button ${i} of template '${template.name}' is ${type ?? "missing"}, not URL`);
    if (b.link !== "portalLink") doc.fail(["buttons", i, "link"], `unknown link slot '${b.link}' (only portalLink)`);
    return { link: "portalLink" };
  });

  for (const language of options.languages ?? []) {
    if (!template.languages.has(language)) doc.fail(["template"], `template '${template.name}' has no '${language}' translation (configured language)`);
  }

  let send: SendAt = { kind: "now" };
  if (raw.send !== undefined && raw.send !== "now") {
    if (raw.resourceType !== "Appointment") doc.fail(["send"], "'before: start' needs an Appointment");
    send = { kind: "before-start", hours: raw.send.hours };
  }
  return {
    template,
    category: raw.category,
    send,
    distinctBy: raw.distinctBy.map((d, i) => condition(d, ["distinctBy", i], "distinctBy")),
    slots,
    buttons,
    endedByReply: raw.endedByReply ?? [],
  };
}

function codeList(doc: YamlDoc, list: z.output<typeof codeListSchema>, path: FieldPath, resourceType: TriggerType): Condition {
  const expression = `${list.element}.coding.where(system = '${list.system}' and code in (${list.codes.map((c) => `'${c}'`).join(" | ")})).exists()`;
  try {
    checkFhirPath(`${list.element}.coding.code.exists() and ${list.element}.coding.system.exists()`, resourceType, "suppress");
  } catch (err) {
    if (err instanceof FhirPathRejected) doc.fail([...path, "element"], err.message);
    throw err;
  }
  const steps = list.element.split(".");
  const codes = new Set(list.codes);
  return {
    expression,
    evaluate: (resource) => {
      let nodes: unknown[] = [resource];
      for (const step of [...steps, "coding"]) {
        nodes = nodes.flatMap((n) => {
          const v = typeof n === "object" && n !== null ? (n as Record<string, unknown>)[step] : undefined;
          // JSON null (or any non-object) where a CodeableConcept or Coding belongs is no match, never a throw.
          return v === undefined || v === null ? [] : Array.isArray(v) ? (v as unknown[]) : [v];
        });
      }
      const hit = nodes.some((c) => {
        if (typeof c !== "object" || c === null) return false;
        const coding = c as { system?: unknown; code?: unknown };
        return coding.system === list.system && typeof coding.code === "string" && codes.has(coding.code);
      });
      return [hit];
    },
  };
}

function rawTrigger(doc: YamlDoc): Record<string, unknown> | undefined {
  const data = doc.data as { trigger?: unknown } | null;
  return typeof data?.trigger === "object" && data.trigger !== null ? (data.trigger as Record<string, unknown>) : undefined;
}

function compileCondition(doc: YamlDoc, expression: string, path: FieldPath, resourceType: TriggerType, kind: ConditionKind, clock: NowCell): Condition {
  try {
    checkFhirPath(expression, resourceType, kind);
  } catch (err) {
    if (err instanceof FhirPathRejected) doc.fail(path, err.message);
    throw err;
  }
  // Rules share conditions (booked → confirmation and reminder); one object per text lets the
  // mapping evaluate each once per change.
  const key = `${resourceType}\u0000${kind}\u0000${expression}`;
  const interned = clock.conditions.get(key);
  if (interned !== undefined) return interned;
  let compiled: (resource: unknown, env: Record<string, unknown>) => unknown[];
  try {
    compiled = fhirpath.compile(expression, r4Model, { userInvocationTable: clock.invocationTable }) as (
      resource: unknown,
      env: Record<string, unknown>,
    ) => unknown[];
  } catch {
    doc.fail(path, "invalid FHIRPath");
  }
  const slow: Evaluate = (resource, previous, now) => {
    clock.set(now);
    try {
      return compiled(resource, { current: resource, previous: previous ?? [] });
    } catch {
      // fhirpath.js throws on malformed data (a date-only Appointment.start compared with now()).
      // Deny by default: a condition that cannot be evaluated does not hold, and no message goes out.
      return [];
    }
  };
  const condition: Condition = { expression, evaluate: fastPath(expression, slow) ?? slow };
  clock.conditions.set(key, condition);
  return condition;
}

const codeField = "(status|intent)";
const codeLiteral = "'([a-z][a-z-]*)'";
const equalsCode = new RegExp(`^${codeField}\\s*=\\s*${codeLiteral}$`);
const inCodes = new RegExp(`^${codeField}\\s+in\\s+\\(\\s*${codeLiteral}(?:\\s*\\|\\s*'[a-z][a-z-]*')*\\s*\\)$`);
const leafPath = /^(id|start|end|status|meta\.versionId)$/;
const referenceStartsWith = /^((?:[a-zA-Z]+\.)*reference)\.startsWith\('([A-Za-z]+\/)'\)$/;
const instantVsNow = /^(start|end)\s*(>|<)\s*now\(\)(?:\s*-\s*(\d{1,3})\s*(days|hours))?$/;
const previousStatusIn = /^%previous\.empty\(\)\s+or\s+%previous\.status\s+in\s+\((\s*'[a-z][a-z-]*'(?:\s*\|\s*'[a-z][a-z-]*')*\s*)\)$/;
const unitMs = { days: 86_400_000, hours: 3_600_000 } as const;

type Evaluate = Condition["evaluate"];

/**
 * The commonest conditions evaluated directly, with fhirpath.js as the fallback whenever the
 * input is not the simple single-valued case: `status = 'booked'`, `status in (...)`,
 * `subject.reference.startsWith('Patient/')`, `start > now() - 2 days`, `%previous.empty() or
 * %previous.status in (...)`, and distinctBy `id`/`start`.
 * Same results as FHIRPath (test/mapping/load-rules.test.ts compares them), at a fraction of the cost.
 */
function fastPath(expression: string, slow: Evaluate): Evaluate | undefined {
  const text = expression.trim();
  const eq = equalsCode.exec(text) ?? inCodes.exec(text);
  if (eq !== null) {
    const field = eq[1] ?? "status";
    const codes = new Set([...text.matchAll(/'([a-z][a-z-]*)'/g)].map((m) => m[1]));
    return (resource, previous, now) => {
      const v = (resource as unknown as Record<string, unknown>)[field];
      if (v === undefined) return [];
      return typeof v === "string" ? [codes.has(v)] : slow(resource, previous, now);
    };
  }
  if (leafPath.test(text)) {
    const steps = text.split(".");
    return (resource, previous, now) => {
      const v = navigate(resource, steps);
      if (v === undefined) return [];
      return typeof v === "string" ? [v] : slow(resource, previous, now);
    };
  }
  const sw = referenceStartsWith.exec(text);
  if (sw !== null) {
    const steps = (sw[1] ?? "").split(".");
    const prefix = sw[2] ?? "";
    return (resource, previous, now) => {
      const v = navigate(resource, steps);
      if (v === undefined) return [];
      return typeof v === "string" ? [v.startsWith(prefix)] : slow(resource, previous, now);
    };
  }
  const prevStatus = previousStatusIn.exec(text);
  if (prevStatus !== null) {
    const codes = new Set([...(prevStatus[1] ?? "").matchAll(/'([a-z][a-z-]*)'/g)].map((m) => m[1]));
    return (resource, previous, now) => {
      if (previous === undefined) return [true];
      return typeof previous.status === "string" ? [codes.has(previous.status)] : slow(resource, previous, now);
    };
  }
  const cmp = instantVsNow.exec(text);
  if (cmp !== null) {
    const field = cmp[1] ?? "start";
    const greater = cmp[2] === ">";
    const offset = cmp[3] !== undefined ? Number(cmp[3]) * unitMs[cmp[4] === "hours" ? "hours" : "days"] : 0;
    return (resource, previous, now) => {
      const v = (resource as unknown as Record<string, unknown>)[field];
      if (v === undefined) return [];
      // Only full instants (with seconds and offset) compare exactly like FHIRPath; anything else goes the slow way.
      if (typeof v !== "string" || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/.test(v)) return slow(resource, previous, now);
      const at = Date.parse(v);
      const bound = now.getTime() - offset;
      return [greater ? at > bound : at < bound];
    };
  }
  return undefined;
}

/** Follow single-valued object steps; undefined when a step is missing, a marker object when it hits an array. */
function navigate(resource: unknown, steps: readonly string[]): unknown {
  let v: unknown = resource;
  for (const step of steps) {
    if (Array.isArray(v)) return v; // a collection: let FHIRPath decide
    v = typeof v === "object" && v !== null ? (v as Record<string, unknown>)[step] : undefined;
    if (v === undefined) return undefined;
  }
  return v;
}

interface NowCell {
  set(now: Date): void;
  readonly conditions: Map<string, Condition>;
  readonly invocationTable: Record<string, { fn: () => unknown; arity: Record<number, []> }>;
}

/**
 * FHIRPath now() reads the wall clock. Rules must see the injected clock instead (tests, replays,
 * preview at a chosen instant), so now() is replaced by a cell set before each synchronous
 * evaluation. The value is built once per distinct instant as a typed FHIRPath dateTime.
 */
function nowCell(): NowCell {
  const typed = fhirpath.compile("%t.toDateTime()", undefined, { resolveInternalTypes: false }) as (r: unknown, env: Record<string, unknown>) => unknown[];
  let at = Number.NaN;
  let value: unknown[] = [];
  return {
    set(now) {
      if (now.getTime() === at) return;
      at = now.getTime();
      value = typed({}, { t: now.toISOString() });
    },
    invocationTable: { now: { fn: () => value, arity: { 0: [] } } },
    conditions: new Map(),
  };
}

