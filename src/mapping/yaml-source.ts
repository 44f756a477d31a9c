import { LineCounter, parseAllDocuments, isCollection, isMap, isScalar, type Document, type Node } from "yaml";

/** Rule and template files are not PHI; their errors name file, line and field so a hospital team can fix them. */
export class MappingError extends Error {
  override name = "MappingError";
}

export type FieldPath = readonly (string | number)[];

/** "slots[2]", "trigger.when", "languages.es.body" */
function formatPath(path: FieldPath): string {
  let out = "";
  for (const part of path) out += typeof part === "number" ? `[${part}]` : out === "" ? part : `.${part}`;
  return out === "" ? "(root)" : out;
}

export interface YamlDoc {
  readonly data: unknown;
  /** Throws MappingError "file:line: field: message", using the deepest existing node on the path. */
  readonly fail: (path: FieldPath, message: string) => never;
}

/** Parse every YAML document in a file (rules may share a file, separated by ---). */
export function parseYamlDocs(text: string, displayName: string): YamlDoc[] {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (!Array.isArray(docs)) return []; // an empty file yields an EmptyStream
  const out: YamlDoc[] = [];
  for (const doc of docs) {
    const first = doc.errors[0];
    if (first) {
      const line = lineCounter.linePos(first.pos[0]).line;
      throw new MappingError(`${displayName}:${line}: invalid YAML (${first.code})`);
    }
    if (doc.contents === null) continue;
    out.push({
      data: doc.toJS({ maxAliasCount: 0 }),
      fail: (path, message) => {
        const line = lineOf(doc, lineCounter, path);
        throw new MappingError(`${displayName}${line !== undefined ? `:${line}` : ""}: ${formatPath(path)}: ${message}`);
      },
    });
  }
  return out;
}

function lineOf(doc: Document, counter: LineCounter, path: FieldPath): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = nodeAt(doc, path.slice(0, n));
    const offset = node?.range?.[0];
    if (offset !== undefined) return counter.linePos(offset).line;
  }
  return undefined;
}

function nodeAt(doc: Document, path: FieldPath): Node | undefined {
  let node: unknown = doc.contents;
  for (const [i, key] of path.entries()) {
    if (!isCollection(node)) return undefined;
    if (isMap(node) && typeof key === "string") {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
      if (!pair) return undefined;
      // A scalar entry at the end of the path: point at its key, which is where a reader looks.
      const isLast = i === path.length - 1;
      node = isLast && !isCollection(pair.value) ? pair.key : pair.value;
      continue;
    }
    node = node.get(key, true);
  }
  return node as Node | undefined;
}
