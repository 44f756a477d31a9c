/**
 * Prints the README's configuration reference, generated from the code so the two cannot drift:
 * the environment variables (src/config/env.ts) and every config key with its type and default
 * (the zod schema in src/config/config.schema.ts). test/scripts/env-docs.test.ts checks that
 * README.md holds exactly this between <!-- env:start --> and <!-- env:end -->.
 *
 *   node --import tsx scripts/env-docs.ts            print the block
 *   node --import tsx scripts/env-docs.ts --write    replace the block in README.md
 */
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { z } from "zod";
import { configSchema } from "../src/config/config.schema.js";
import { configFileVar, envVars } from "../src/config/env.js";

export const startMarker = "<!-- env:start -->";
export const endMarker = "<!-- env:end -->";

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  format?: string;
}

interface KeyRow {
  path: string;
  type: string;
  default?: unknown;
}

const cell = (text: string) => text.replaceAll("|", "\\|");

function typeOf(s: JsonSchema): string {
  if (s.enum !== undefined) return s.enum.map((v) => JSON.stringify(v).replace(/^"|"$/g, "")).join(" \\| ");
  if (s.const !== undefined) return JSON.stringify(s.const).replace(/^"|"$/g, "");
  const variants = s.anyOf ?? s.oneOf;
  if (variants !== undefined) return [...new Set(variants.map(typeOf))].join(" \\| ");
  if (s.type === "array") return `list of ${s.items !== undefined ? typeOf(s.items) : "any"}`;
  if (s.format === "uri") return "url";
  return Array.isArray(s.type) ? s.type.join(" \\| ") : (s.type ?? "any");
}

function walk(s: JsonSchema, path: string, rows: KeyRow[]): void {
  const variants = s.anyOf ?? s.oneOf ?? s.allOf;
  if (variants !== undefined && variants.some((v) => v.properties !== undefined)) {
    // A union of object shapes (e.g. fhir.auth): every key any variant has, listed once.
    for (const v of variants) walk({ ...v, default: v.default ?? s.default }, path, rows);
    return;
  }
  if (s.properties !== undefined) {
    for (const [key, child] of Object.entries(s.properties)) walk(child, path === "" ? key : `${path}.${key}`, rows);
    return;
  }
  if (typeof s.additionalProperties === "object") {
    walk(s.additionalProperties, `${path}.<name>`, rows);
    return;
  }
  const seen = rows.find((r) => r.path === path);
  const type = typeOf(s);
  // The same key in several union variants (fhir.auth.type): one row, every allowed value.
  if (seen !== undefined) {
    if (!seen.type.split(" \\| ").includes(type)) seen.type = `${seen.type} \\| ${type}`;
    return;
  }
  rows.push({ path, type, ...(s.default !== undefined ? { default: s.default } : {}) });
}

/** The Markdown block (without markers). */
export function envDocs(): string {
  const envByPath = new Map(envVars.map((v) => [v.path.join("."), v.name]));
  const lines = [
    "| Variable | Sets | Secret | Meaning |",
    "| --- | --- | --- | --- |",
    ...envVars.map((v) => `| \`${v.name}\` | \`${v.path.join(".")}\` | ${v.secret === true ? "yes" : ""} | ${cell(v.description)} |`),
    `| \`${configFileVar.name}\` | | | ${cell(configFileVar.description)} |`,
    "",
    "<details><summary>Every configuration key, its type and default (YAML)</summary>",
    "",
    "| Key | Type | Default | Variable |",
    "| --- | --- | --- | --- |",
  ];
  const rows: KeyRow[] = [];
  walk(z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }) as JsonSchema, "", rows);
  for (const r of rows) {
    const env = envByPath.get(r.path);
    lines.push(`| \`${r.path}\` | ${r.type} | ${r.default !== undefined ? `\`${cell(JSON.stringify(r.default))}\`` : ""} | ${env !== undefined ? `\`${env}\`` : ""} |`);
  }
  lines.push("", "</details>");
  return lines.join("\n");
}

/** README text with the block between the markers replaced by `block`. */
export function withEnvDocs(readme: string, block: string): string {
  const start = readme.indexOf(startMarker);
  const end = readme.indexOf(endMarker);
  if (start < 0 || end < start) throw new Error(`README.md has no ${startMarker} … ${endMarker} block`);
  return `${readme.slice(0, start + startMarker.length)}\n${block}\n${readme.slice(end)}`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes("--write")) {
    const file = new URL("../README.md", import.meta.url);
    writeFileSync(file, withEnvDocs(readFileSync(file, "utf8"), envDocs()));
  } else process.stdout.write(`${envDocs()}\n`);
}
