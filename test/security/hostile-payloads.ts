import { fc } from "@fast-check/vitest";
import { expect } from "vitest";
import { loadFixture } from "../fixtures/fhir/load-fixture.js";

/**
 * Generators of hostile request bodies, and the one assertion every hostile request must pass:
 * never a 5xx, and every rejection a 4xx whose JSON body says why (OperationOutcome or {error}).
 */

/** How many generated cases per property: a quick pass in CI, a long one under FN_RELIABILITY_FULL. */
export const fuzzRuns = process.env.FN_RELIABILITY_FULL ? 1_000 : 40;

export const realisticResources = (): Record<string, unknown>[] =>
  [
    loadFixture("Appointment", "booked-en-chicago"),
    loadFixture("Appointment", "cancelled-en-chicago"),
    loadFixture("MedicationDispense", "ready-for-pickup"),
    loadFixture("MedicationRequest", "sertraline-order"),
    loadFixture("DiagnosticReport", "final-viral-load"),
    loadFixture("Patient", "jordan-rivera-en"),
    loadFixture("Task", "pharmacy-ready-for-pickup"),
  ] as unknown as Record<string, unknown>[];

const hostileKeys = ["__proto__", "constructor", "prototype", "toString", "valueOf", "hasOwnProperty", "resourceType", "id", "meta", "entry"];
const resourceTypes = ["Appointment", "MedicationDispense", "MedicationRequest", "DiagnosticReport", "Task", "Patient", "Bundle", "Parameters", "Subscription", "Communication", "OperationOutcome", "Nope", "", "appointment", "__proto__"];

/** Strings that stress parsers, regexes, path builders and log formatting. */
export const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.constantFrom(
    "",
    " ",
    "\u0000",
    "\ud800",
    "\ufeff",
    "../../etc/passwd",
    "%00",
    "%2e%2e%2f",
    "Appointment/../../admin",
    "${7*7}",
    "{{1}}",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "\r\nX-Injected: 1",
    "a".repeat(5000),
    "1e309",
    "-0",
    "NaN",
    "\u202e",
  ),
);

const scalar = fc.oneof(hostileString, fc.integer(), fc.double(), fc.boolean(), fc.constant(null));

/** A JSON object whose keys include prototype-pollution names. */
export const hostileObject: fc.Arbitrary<Record<string, unknown>> = fc.letrec<{ obj: Record<string, unknown>; value: unknown }>((tie) => ({
  obj: fc.dictionary(fc.oneof(fc.constantFrom(...hostileKeys), fc.string({ maxLength: 12 })), tie("value"), { maxKeys: 6 }),
  value: fc.oneof({ depthSize: "small", withCrossShrink: true }, scalar, tie("obj"), fc.array(tie("value"), { maxLength: 4 })),
})).obj;

/** Something that looks like a FHIR resource: a random type, an odd id, odd fields. */
const resourceLike = fc
  .record({ resourceType: fc.constantFrom(...resourceTypes), id: fc.option(hostileString, { nil: undefined }), rest: hostileObject })
  .map(({ resourceType, id, rest }) => ({ ...rest, resourceType, ...(id !== undefined ? { id } : {}) }));

/** A realistic fixture with one element replaced by something hostile (deep paths included). */
const mutatedFixture = fc
  .record({ base: fc.constantFrom(...realisticResources()), pathSeed: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), value: fc.oneof(scalar, hostileObject, fc.jsonValue({ maxDepth: 3 })) })
  .map(({ base, pathSeed, value }) => mutateAt(structuredClone(base), pathSeed, value));

function mutateAt(target: Record<string, unknown>, pathSeed: number[], value: unknown): Record<string, unknown> {
  let node: unknown = target;
  for (let i = 0; i < pathSeed.length; i++) {
    if (typeof node !== "object" || node === null) break;
    const keys = Object.keys(node);
    if (keys.length === 0) break;
    const key = keys[pathSeed[i]! % keys.length]!;
    const last = i === pathSeed.length - 1;
    const child = (node as Record<string, unknown>)[key];
    if (last || typeof child !== "object" || child === null) {
      Object.defineProperty(node, key, { value, enumerable: true, writable: true, configurable: true });
      break;
    }
    node = child;
  }
  return target;
}

const bundleOf = (entries: fc.Arbitrary<unknown>) =>
  fc.record({
    resourceType: fc.constant("Bundle"),
    type: fc.constantFrom("history", "subscription-notification", "transaction", "searchset", "batch", "nope"),
    entry: fc.array(fc.record({ fullUrl: fc.option(hostileString, { nil: undefined }), resource: entries, request: fc.option(hostileObject, { nil: undefined }) }), { maxLength: 5 }),
  });

/** Any FHIR-ish JSON value: realistic, mutated, random, bundles thereof, and non-objects. */
export const fhirishJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...realisticResources()),
  mutatedFixture,
  resourceLike,
  bundleOf(fc.oneof(mutatedFixture, resourceLike)),
  fc.jsonValue({ maxDepth: 4 }),
);

/** How the JSON text is put on the wire. */
export type Encoding = "plain" | "bom" | "invalid-utf8" | "truncated" | "utf16" | "random-bytes";
export const encodingArb = fc.constantFrom<Encoding>("plain", "plain", "bom", "invalid-utf8", "truncated", "utf16", "random-bytes");

export function encode(value: unknown, encoding: Encoding, seed: number): Uint8Array {
  // JSON.stringify keeps "__proto__" own keys as ordinary keys on the wire, which is the attack.
  const text = JSON.stringify(value) ?? "null";
  const utf8 = new TextEncoder().encode(text);
  switch (encoding) {
    case "plain":
      return utf8;
    case "bom":
      return concat(new Uint8Array([0xef, 0xbb, 0xbf]), utf8);
    case "invalid-utf8": {
      const at = utf8.length === 0 ? 0 : seed % utf8.length;
      return concat(utf8.slice(0, at), new Uint8Array([0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80]), utf8.slice(at));
    }
    case "truncated":
      return utf8.slice(0, utf8.length === 0 ? 0 : seed % utf8.length);
    case "utf16":
      return new Uint8Array(Buffer.from(`\ufeff${text}`, "utf16le"));
    case "random-bytes": {
      const bytes = new Uint8Array(1 + (seed % 512));
      let x = seed | 1;
      for (let i = 0; i < bytes.length; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        bytes[i] = x & 0xff;
      }
      return bytes;
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export const contentTypeArb = fc.constantFrom(
  "application/fhir+json",
  "application/fhir+json; charset=utf-8",
  "application/json",
  "application/json; charset=latin1",
  "application/fhir+json; fhirVersion=4.0",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/fhir+xml",
  "",
  "application/fhir+json, text/html",
  "\u00ff/\u00ff",
);

/** Deeply nested JSON text (arrays or objects), built as text so the builder itself cannot overflow. */
export function deeplyNested(levels: number, kind: "array" | "object", wrapIn?: Record<string, unknown>): string {
  const inner = kind === "array" ? `${"[".repeat(levels)}${"]".repeat(levels)}` : `${'{"a":'.repeat(levels)}1${"}".repeat(levels)}`;
  if (wrapIn === undefined) return inner;
  return JSON.stringify({ ...wrapIn, extension: "__DEEP__" }).replace('"__DEEP__"', `[{"url":"https://x.example/e","valueString":"v","extension":${inner}}]`);
}

/** Bodies that try to pollute Object.prototype through a parser, a merge or a spread. */
export function pollutionBodies(resourceType: string, id: string): string[] {
  return [
    `{"resourceType":"${resourceType}","id":"${id}","__proto__":{"polluted":"yes"}}`,
    `{"resourceType":"${resourceType}","id":"${id}","constructor":{"prototype":{"polluted":"yes"}}}`,
    `{"resourceType":"${resourceType}","id":"${id}","meta":{"__proto__":{"polluted":"yes"},"versionId":"1"}}`,
    `{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"${resourceType}","id":"${id}","__proto__":{"polluted":"yes"}}}],"__proto__":{"polluted":"yes"}}`,
    `{"__proto__":{"resourceType":"${resourceType}","id":"${id}","polluted":"yes"}}`,
    `{"resourceType":"${resourceType}","id":"${id}","prototype":{"polluted":"yes"},"participant":[{"__proto__":{"polluted":"yes"},"actor":{"reference":"Patient/p1"}}]}`,
  ];
}

export function expectPrototypeClean(): void {
  const probe = {} as Record<string, unknown>;
  expect(probe.polluted, "Object.prototype was polluted").toBeUndefined();
  expect(Object.prototype.hasOwnProperty.call(Object.prototype, "polluted")).toBe(false);
  expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined();
}

/**
 * The contract for every hostile request: no 5xx; a 4xx carries a JSON body with a non-empty
 * message (an OperationOutcome issue's diagnostics or details.text, or an {error} object).
 */
export async function expectHandled(res: Response, what: string): Promise<void> {
  const text = await res.text();
  expect(res.status, `${what} answered ${res.status}: ${text.slice(0, 300)}`).toBeLessThan(500);
  if (res.status < 400) return;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${what} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  expect(rejectionMessage(body), `${what} answered ${res.status} without a message: ${text.slice(0, 300)}`).not.toBe("");
}

export function rejectionMessage(body: unknown): string {
  const b = body as { resourceType?: string; issue?: { diagnostics?: string; details?: { text?: string } }[]; error?: unknown; message?: unknown };
  if (b.resourceType === "OperationOutcome") return (b.issue?.[0]?.diagnostics ?? b.issue?.[0]?.details?.text ?? "").trim();
  if (typeof b.error === "string") return b.error.trim();
  if (typeof b.error === "object" && b.error !== null) {
    const message = (b.error as { message?: unknown }).message;
    return typeof message === "string" ? message.trim() : "";
  }
  return typeof b.message === "string" ? b.message.trim() : "";
}
