import type { Rule } from "../../mapping/load-rules.js";
import type { Template } from "../../mapping/templates.js";
import type { MetaTemplate } from "./template-catalog.js";

/** One local template in one language, as Meta has it (or not). */
export interface TemplateComparison {
  name: string;
  language: string;
  /** Empty when Meta's copy matches what we send. */
  problems: string[];
}

/** The templates the enabled rules send: a disabled rule's template may not be submitted yet. */
export function sentTemplates(rules: readonly Rule[]): Template[] {
  const used = new Map<string, Template>();
  for (const rule of rules) if (rule.enabled && rule.message !== undefined) used.set(rule.message.template.name, rule.message.template);
  return [...used.values()];
}

const placeholders = (text: string | undefined): number => new Set(text?.match(/\{\{\s*\d+\s*\}\}/g)?.map((p) => p.replace(/\D/g, "")) ?? []).size;

/**
 * Compare the local templates (in the languages the site sends) with Meta's: present, APPROVED,
 * the same category, the same number of body variables and the same buttons in order. A
 * mismatch means sends would fail (132000, 132001) or be billed and judged as something else.
 */
export function compareTemplates(local: Iterable<Template>, meta: readonly MetaTemplate[], languages: ReadonlySet<string>): TemplateComparison[] {
  const byKey = new Map(meta.map((t) => [`${t.name}|${t.language}`, t]));
  const out: TemplateComparison[] = [];
  for (const template of local) {
    for (const [language, definition] of template.languages) {
      // A translation the site never sends (no configured language maps to it) does not matter.
      if (!languages.has(language)) continue;
      const remote = byKey.get(`${template.name}|${language}`);
      const problems: string[] = [];
      if (remote === undefined) {
        problems.push("not at Meta (submit it, or fix the name or language code)");
      } else {
        if (remote.status !== "APPROVED") problems.push(`status ${remote.status}, not APPROVED`);
        if (remote.category !== template.category) problems.push(`category ${remote.category}, expected ${template.category}`);
        const body = remote.components.find((c) => c.type === "BODY");
        const remoteVars = placeholders(body?.text);
        if (remoteVars !== template.placeholderCount) problems.push(`body has ${remoteVars} variables at Meta, ${template.placeholderCount} here`);
        const remoteButtons = remote.components.find((c) => c.type === "BUTTONS")?.buttons?.map((b) => b.type) ?? [];
        const localButtons = definition.buttons.map((b) => b.type);
        if (remoteButtons.join(",") !== localButtons.join(",")) problems.push(`buttons [${remoteButtons.join(", ")}] at Meta, [${localButtons.join(", ")}] here`);
      }
      out.push({ name: template.name, language, problems });
    }
  }
  return out;
}
