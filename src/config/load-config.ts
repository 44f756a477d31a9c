import { existsSync, readFileSync } from "node:fs";
import { parseDocument, LineCounter, isMap, isSeq, type Node } from "yaml";
import type { z } from "zod";
import { configSchema, type Config } from "./config.schema.js";
import { envVars, configFileVar } from "./env.js";

/** A configuration problem, already phrased as the one line the process prints before it exits. */
export class ConfigError extends Error {
  override name = "ConfigError";
}


/**
 * Parse with zod and turn the first issue into `source: field: message`. zod messages can echo the
 * received value, which could be a secret, so only the issue code's generic text is kept.
 */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  input: unknown,
  describe: (path: readonly PropertyKey[]) => string,
): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = describe(issue?.path ?? []);
  throw new ConfigError(`${where}: ${issue ? safeMessage(issue) : "invalid"}`);
}

function safeMessage(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "invalid_type":
      return `expected ${issue.expected}`;
    case "unrecognized_keys":
      return `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `'${k}'`).join(", ")}`;
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "too_small":
      return `must be at least ${String(issue.minimum)}${issue.origin === "string" ? " characters" : ""}`;
    case "too_big":
      return `must be at most ${String(issue.maximum)}${issue.origin === "string" ? " characters" : ""}`;
    case "invalid_format":
      // Our regexes carry their own message; built-in formats (url, email...) do not echo the value.
      return issue.format === "regex" ? issue.message : `must be a valid ${issue.format}`;
    case "invalid_union":
      return "does not match any allowed form";
    case "custom":
      return issue.message;
    case "not_multiple_of":
    case "invalid_key":
    case "invalid_element":
      return "invalid value";
  }
}

export interface YamlFile {
  data: unknown;
  /** Line (1-based) of the node at a path, for error messages. */
  lineOf(path: readonly PropertyKey[]): number | undefined;
}

export function readYamlFile(file: string): YamlFile {
  if (!existsSync(file)) throw new ConfigError(`${file}: file not found`);
  const lineCounter = new LineCounter();
  const doc = parseDocument(readFileSync(file, "utf8"), { lineCounter, prettyErrors: false });
  const first = doc.errors[0];
  if (first) {
    const line = first.linePos?.[0]?.line;
    throw new ConfigError(`${file}${line ? `:${line}` : ""}: not valid YAML (${first.code})`);
  }
  return {
    data: doc.toJS() as unknown,
    lineOf(path) {
      let node: unknown = doc.contents;
      let last: Node | undefined;
      for (const key of path) {
        if (isMap(node)) {
          const pair = node.items.find((p) => String((p.key as { value?: unknown } | null)?.value) === String(key));
          last = (pair?.key as Node | undefined) ?? last;
          node = pair?.value;
        } else if (isSeq(node)) {
          node = node.items[Number(key)];
          if (node) last = node as Node;
        } else break;
      }
      const offset = last?.range?.[0];
      return offset === undefined ? undefined : lineCounter.linePos(offset).line;
    },
  };
}


const defaultConfigFile = "config/fhir-notify.yaml";

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== "object" || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  const last = path[path.length - 1];
  if (last !== undefined) node[last] = value;
}

function startsWith(path: readonly PropertyKey[], prefix: readonly string[]): boolean {
  return prefix.every((p, i) => String(path[i]) === p);
}

/**
 * Read config/fhir-notify.yaml (or $FHIR_NOTIFY_CONFIG) if present, overlay the environment, and
 * validate the result once. Throws ConfigError naming the variable or file:line: field.
 */
export function loadConfig(env: NodeJS.ProcessEnv, cwd: string = process.cwd()): Config {
  const explicit = env[configFileVar.name];
  const file = explicit ?? defaultConfigFile;
  const path = file.startsWith("/") ? file : `${cwd}/${file}`;
  let yaml: YamlFile | undefined;
  if (explicit !== undefined || existsSync(path)) {
    try {
      yaml = readYamlFile(path);
    } catch (err) {
      if (err instanceof ConfigError) throw new ConfigError(err.message.replace(path, file));
      throw err;
    }
  }
  const raw: Record<string, unknown> =
    typeof yaml?.data === "object" && yaml.data !== null && !Array.isArray(yaml.data) ? structuredClone(yaml.data as Record<string, unknown>) : {};
  if (yaml !== undefined && (yaml.data === null || typeof yaml.data !== "object" || Array.isArray(yaml.data)) && yaml.data !== undefined) {
    throw new ConfigError(`${file}: expected a mapping at the top level`);
  }

  const fromEnv: EnvOrigin[] = [];
  for (const v of envVars) {
    const value = env[v.name];
    if (value === undefined || value === "") continue;
    if (v.type === "number") {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new ConfigError(`env ${v.name}: expected a number`);
      setPath(raw, v.path, n);
    } else setPath(raw, v.path, value);
    fromEnv.push({ name: v.name, path: v.path });
  }

  return parseOrThrow(configSchema, raw, (issuePath) => {
    const envHit = fromEnv.find((e) => startsWith(issuePath, e.path) || startsWith(e.path, issuePath.map(String)));
    const field = issuePath.length > 0 ? issuePath.join(".") : "(root)";
    if (envHit && issuePath.length > 0) return `env ${envHit.name} (${field})`;
    if (yaml) {
      const line = yaml.lineOf(issuePath);
      return `${file}${line !== undefined ? `:${line}` : ""}: ${field}`;
    }
    return `config: ${field}`;
  });
}

interface EnvOrigin {
  name: string;
  path: readonly string[];
}
