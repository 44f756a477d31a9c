import { existsSync, readFileSync } from "node:fs";
import { parseDocument, LineCounter, isMap, isSeq, type Node } from "yaml";
import type { z } from "zod";
import { configSchema, type Config } from "./config.schema.js";
import { ConfigError } from "../shared/config-error.js";
import { envVars, configFileVar, fileSuffix, sourceSecretName, sourceSecretVar } from "./env.js";

/** zod messages can echo the received value, which could be a secret: only the issue code's generic text is kept. */
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

/** The secret a `<NAME>_FILE` variable points at: the file's content without surrounding whitespace. */
function readSecretFile(name: string, file: string, problems: string[]): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8").trim();
  } catch (err) {
    problems.push(`env ${name}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
    return undefined;
  }
  if (text === "") problems.push(`env ${name}: ${file} is empty`);
  return text === "" ? undefined : text;
}

/** A secret from `NAME` or from the file `NAME_FILE` names; both set is a mistake worth stopping for. */
function secretFromEnv(env: NodeJS.ProcessEnv, name: string, problems: string[]): string | undefined {
  const direct = env[name];
  const file = env[`${name}${fileSuffix}`];
  const hasDirect = direct !== undefined && direct !== "";
  const hasFile = file !== undefined && file !== "";
  if (hasDirect && hasFile) {
    problems.push(`env ${name} and ${name}${fileSuffix} are both set (use one)`);
    return undefined;
  }
  return hasFile ? readSecretFile(`${name}${fileSuffix}`, file, problems) : hasDirect ? direct : undefined;
}

const asRecord = (v: unknown): Record<string, unknown> | undefined => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);

/** SOURCE_<NAME>_SECRET(_FILE) into the field the source's auth type uses. */
function sourceSecrets(env: NodeJS.ProcessEnv, raw: Record<string, unknown>, problems: string[], fromEnv: EnvOrigin[]): void {
  const names = new Set(Object.keys(env).flatMap((k) => (sourceSecretVar.pattern.test(k.replace(/_FILE$/, "")) ? [k.replace(/_FILE$/, "")] : [])));
  const sources = asRecord(raw.sources) ?? {};
  for (const name of [...names].sort()) {
    const source = Object.keys(sources).find((s) => sourceSecretName(s) === name);
    const value = secretFromEnv(env, name, problems);
    if (source === undefined) {
      problems.push(`env ${name}: no source in the config has that name (sources: ${Object.keys(sources).join(", ") || "none"})`);
      continue;
    }
    const auth = asRecord(asRecord(sources[source])?.auth);
    const field = ({ bearer: "token", header: "value", hmac: "secret" } as Record<string, string>)[String(auth?.type)];
    if (auth === undefined || field === undefined) {
      problems.push(`env ${name}: source '${source}' has auth.type ${typeof auth?.type === "string" ? auth.type : "unset"}, which takes no secret`);
      continue;
    }
    if (value === undefined) continue;
    auth[field] = value;
    fromEnv.push({ name, path: ["sources", source, "auth", field] });
  }
}

/**
 * A Graph API base given with its version (https://graph.facebook.com/v23.0) is taken as base plus
 * that version, so URLs never read /v23.0/v23.0; a base naming another version than the pinned
 * graphVersion is refused rather than guessed.
 */
function versionedApiBase(raw: Record<string, unknown>, origin: (path: string[]) => string, problems: string[]): void {
  const whatsapp = asRecord(raw.whatsapp);
  const base = whatsapp?.apiBase;
  if (whatsapp === undefined || typeof base !== "string") return;
  const m = /^(https?:\/\/.+?)\/(v\d+\.\d+)\/?$/.exec(base);
  if (m === null) return;
  const [, bare, version] = m;
  const pinned = whatsapp.graphVersion;
  if (pinned !== undefined && pinned !== version) {
    problems.push(`${origin(["whatsapp", "apiBase"])}: names Graph API ${version ?? ""} but whatsapp.graphVersion is ${typeof pinned === "string" ? pinned : "set"} (give the base without a version)`);
    return;
  }
  whatsapp.apiBase = bare;
  whatsapp.graphVersion = version;
}

/**
 * Read config/fhir-notify.yaml (or $FHIR_NOTIFY_CONFIG) if present, overlay the environment (secrets
 * also from `<NAME>_FILE`), and validate the result once. Throws one ConfigError listing every
 * problem found, each naming the variable or file:line: field.
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

  const problems: string[] = [];
  const fromEnv: EnvOrigin[] = [];
  for (const v of envVars) {
    const value = v.secret === true ? secretFromEnv(env, v.name, problems) : env[v.name];
    if (value === undefined || value === "") continue;
    if (v.type === "number") {
      const n = Number(value);
      if (!Number.isFinite(n)) {
        problems.push(`env ${v.name}: expected a number`);
        continue;
      }
      setPath(raw, v.path, n);
    } else setPath(raw, v.path, value);
    fromEnv.push({ name: v.name, path: v.path });
  }
  sourceSecrets(env, raw, problems, fromEnv);

  const where = (issuePath: readonly PropertyKey[]) => {
    const envHit = fromEnv.find((e) => startsWith(issuePath, e.path) || startsWith(e.path, issuePath.map(String)));
    const field = issuePath.length > 0 ? issuePath.join(".") : "(root)";
    if (envHit && issuePath.length > 0) return `env ${envHit.name} (${field})`;
    if (yaml) {
      const line = yaml.lineOf(issuePath);
      return `${file}${line !== undefined ? `:${line}` : ""}: ${field}`;
    }
    return `config: ${field}`;
  };
  versionedApiBase(raw, where, problems);

  // Outside the sandbox, link and reply tokens must not be guessable hashes of delivery ids.
  const portal = asRecord(asRecord(raw.mapping)?.portal);
  if (raw.fhir !== undefined && (portal?.tokenSecret === undefined || portal.tokenSecret === "")) {
    problems.push("mapping.portal.tokenSecret is required with a FHIR server (only the sandbox runs without): set MAPPING_PORTAL_TOKEN_SECRET or MAPPING_PORTAL_TOKEN_SECRET_FILE");
  }

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(`${where(issue.path)}: ${missingVariable(issue) ?? safeMessage(issue)}`);
  }
  if (problems.length > 0) throw new ConfigError([...new Set(problems)].join("; "));
  return result.data as Config;
}

/** A required value that is absent and that a variable sets: say which variable, not "expected string". */
function missingVariable(issue: z.core.$ZodIssue): string | undefined {
  if (issue.code !== "invalid_type" || !issue.message.includes("undefined")) return undefined;
  const v = envVars.find((e) => e.path.join(".") === issue.path.join("."));
  if (v === undefined) return undefined;
  return `missing (set ${v.name}${v.secret === true ? ` or ${v.name}${fileSuffix}` : ""})`;
}

interface EnvOrigin {
  name: string;
  path: readonly string[];
}
