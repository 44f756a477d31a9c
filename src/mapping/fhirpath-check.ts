import fhirpath from "fhirpath";
import type { TriggerType } from "../shared/trigger-type.js";
import { isAllowedPath, isAllowedValuePath, readsPolymorphicExtensionValue, type ConditionKind } from "./logic-fields.js";

/** Thrown with a field-level message; the loader prefixes file and line. Never contains resource data. */
export class FhirPathRejected extends Error {
  override name = "FhirPathRejected";
}

interface AstNode {
  type: string;
  text?: string;
  children?: AstNode[];
}

/** A place in the resource an expression navigates to: the current resource or %previous, plus a dotted path. */
interface Place {
  readonly previous: boolean;
  readonly path: string;
}

/**
 * Functions a condition may call. Deliberately absent: resolve() (would dereference other
 * resources), descendants()/children()/repeat() (reach every field), trace() (writes values to
 * the log), memberOf() and friends (terminology server calls), today() (whose day, in which zone?).
 */
const passThrough = new Set(["where", "first", "last", "tail", "skip", "take", "single", "distinct", "ofType", "as"]);
const lambdas = new Set(["where", "select", "exists", "all"]);
const valueFunctions = new Set([
  "empty", "exists", "all", "allTrue", "anyTrue", "allFalse", "anyFalse", "count", "isDistinct", "subsetOf", "supersetOf",
  "not", "is", "toString", "toInteger", "toDecimal", "toDate", "toDateTime", "toTime", "toBoolean", "toQuantity",
  "convertsToString", "convertsToInteger", "convertsToDate", "convertsToDateTime", "convertsToBoolean",
  "startsWith", "endsWith", "contains", "matches", "length", "lower", "upper", "indexOf", "substring",
  "now", "hasValue", "lowBoundary", "highBoundary",
]);
const constants = new Set(["ucum", "sct", "loinc"]);

/**
 * Parse an expression and prove that it reads only allowed LOGIC fields (and %previous's
 * projection). Throws FhirPathRejected naming the first offending field or function.
 */
export function checkFhirPath(expression: string, resourceType: TriggerType, kind: ConditionKind): void {
  let ast: AstNode;
  try {
    ast = fhirpath.parse(expression) as AstNode;
  } catch {
    throw new FhirPathRejected("invalid FHIRPath syntax");
  }
  const check = (place: Place): void => {
    if (!place.previous && readsPolymorphicExtensionValue(resourceType, place.path)) {
      throw new FhirPathRejected(
        `${resourceType}.extension.value can hold free text (valueString, valueMarkdown, a CodeableConcept's text): read a typed value instead (valueBoolean, valueCode, valueDateTime, valueCoding.code)`,
      );
    }
    if (!isAllowedPath(resourceType, kind, place.path, place.previous)) {
      const where = place.previous ? `%previous.${place.path}` : `${resourceType}.${place.path}`;
      throw new FhirPathRejected(
        place.previous
          ? `'${where}' is not kept between versions (only ${"status, start, end, intent, issued, businessStatus, meta.versionId"})`
          : `forbidden field '${where}': conditions may read LOGIC fields only${kind === "suppress" ? " (and codes)" : ""}`,
      );
    }
  };
  const root: Place[] = [{ previous: false, path: "" }];
  const result = walk(ast, root, { resourceType, check });
  if (kind === "distinctBy") {
    if (result === undefined || result.length === 0) throw new FhirPathRejected("distinctBy must name a field, e.g. id or start");
    for (const place of result) {
      if (place.previous || !isAllowedValuePath(resourceType, place.path)) {
        throw new FhirPathRejected(`distinctBy may only return whole LOGIC fields, not '${place.path || resourceType}'`);
      }
    }
  }
}

interface WalkContext {
  resourceType: string;
  check(place: Place): void;
}

function identifier(node: AstNode | undefined): string {
  return (node?.text ?? "").replace(/^`|`$/g, "");
}

/** Returns the places the node's value comes from, or undefined when the value is computed (a boolean, a count, a literal). */
function walk(node: AstNode, focus: readonly Place[], ctx: WalkContext): Place[] | undefined {
  const kids = node.children ?? [];
  switch (node.type) {
    case "EntireExpression":
    case "TermExpression":
    case "InvocationTerm":
    case "ParenthesizedTerm":
      return kids[0] ? walk(kids[0], focus, ctx) : undefined;
    case "LiteralTerm":
      return undefined;
    case "ExternalConstantTerm": {
      const name = identifier(kids[0]?.children?.[0]);
      if (name === "current" || name === "resource" || name === "rootResource" || name === "context") return [{ previous: false, path: "" }];
      if (name === "previous") return [{ previous: true, path: "" }];
      if (constants.has(name)) return undefined;
      throw new FhirPathRejected(`unknown variable '%${name}' (use %current or %previous)`);
    }
    case "ThisInvocation":
      return [...focus];
    case "IndexInvocation":
    case "TotalInvocation":
      return undefined;
    case "MemberInvocation":
      return member(identifier(kids[0]), focus, ctx);
    case "FunctionInvocation":
      return call(kids[0], focus, focus, ctx);
    case "InvocationExpression": {
      const [left, right] = kids;
      if (!left || !right) return undefined;
      const input = walk(left, focus, ctx);
      if (right.type === "MemberInvocation") {
        if (input === undefined) throw new FhirPathRejected("cannot tell which field a member of a computed value reads");
        return member(identifier(right.children?.[0]), input, ctx);
      }
      if (right.type === "FunctionInvocation") return call(right.children?.[0], input ?? [], focus, ctx);
      return walk(right, input ?? [], ctx);
    }
    case "IndexerExpression": {
      const [left, index] = kids;
      if (index) walk(index, focus, ctx);
      return left ? walk(left, focus, ctx) : undefined;
    }
    case "TypeExpression": {
      const left = kids[0] ? walk(kids[0], focus, ctx) : undefined;
      return node.text === "as" ? left : undefined;
    }
    case "UnionExpression": {
      const all = kids.map((k) => walk(k, focus, ctx));
      return all.every((p) => p !== undefined) ? all.flat() : undefined;
    }
    default:
      // Operators (and, or, =, in, +, ...) compute a new value from their operands.
      for (const k of kids) walk(k, focus, ctx);
      return undefined;
  }
}

function member(name: string, input: readonly Place[], ctx: WalkContext): Place[] {
  return input.map((place) => {
    // "Appointment.status" spells the type first; it names the resource itself.
    if (place.path === "" && !place.previous && name === ctx.resourceType) return place;
    const next = { previous: place.previous, path: place.path === "" ? name : `${place.path}.${name}` };
    ctx.check(next);
    return next;
  });
}

/** `fn` is a Functn node: Identifier then optional ParamList. */
function call(fn: AstNode | undefined, input: readonly Place[], outerFocus: readonly Place[], ctx: WalkContext): Place[] | undefined {
  const name = identifier(fn?.children?.[0]);
  const params = fn?.children?.[1]?.children ?? [];
  if (name === "extension") {
    params.forEach((p) => walk(p, outerFocus, ctx));
    return member("extension", input, ctx);
  }
  if (name === "iif") {
    const [criterion, yes, no] = params;
    if (criterion) walk(criterion, input.length > 0 ? input : outerFocus, ctx);
    const a = yes ? walk(yes, outerFocus, ctx) : [];
    const b = no ? walk(no, outerFocus, ctx) : [];
    return a === undefined || b === undefined ? undefined : [...a, ...b];
  }
  if (!passThrough.has(name) && !lambdas.has(name) && !valueFunctions.has(name) && name !== "select" && name !== "union" && name !== "combine") {
    throw new FhirPathRejected(`function '${name}()' is not allowed in rule conditions`);
  }
  const argFocus = lambdas.has(name) ? input : outerFocus;
  const args = params.map((p) => walk(p, argFocus, ctx));
  if (name === "select") return args[0];
  if (name === "union" || name === "combine") return args[0] === undefined ? undefined : [...input, ...args[0]];
  if (passThrough.has(name)) return [...input];
  return undefined;
}
