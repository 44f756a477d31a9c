import { z } from "zod";
import type { OperationOutcome, OperationOutcomeIssue } from "fhir/r4";

const codingSchema = z.looseObject({ system: z.string().optional(), code: z.string().optional() });

const issueSchema = z.looseObject({
  severity: z.enum(["fatal", "error", "warning", "information"]),
  code: z.string().regex(/^[a-z-]{1,40}$/),
  details: z.looseObject({ coding: z.array(codingSchema).optional() }).optional(),
  expression: z.array(z.string()).optional(),
});

const outcomeSchema = z.looseObject({
  resourceType: z.literal("OperationOutcome"),
  issue: z.array(z.unknown()),
});

/**
 * The server's OperationOutcome, kept without free text. Servers echo submitted values in
 * `diagnostics` and `details.text` (HAPI quotes the offending element), and these errors end up in
 * logs and job failure reasons, so only the coded parts survive: severity, issue code, coded
 * details and FHIRPath expressions (reference §12: "keep the OperationOutcome without PHI").
 */
export function safeOutcome(body: unknown): OperationOutcome | undefined {
  const parsed = outcomeSchema.safeParse(body);
  if (!parsed.success) return undefined;
  const issue: OperationOutcomeIssue[] = [];
  for (const raw of parsed.data.issue) {
    const one = issueSchema.safeParse(raw);
    if (!one.success) continue;
    const coding = one.data.details?.coding?.map((c) => ({
      ...(c.system !== undefined ? { system: c.system } : {}),
      ...(c.code !== undefined ? { code: c.code } : {}),
    }));
    issue.push({
      severity: one.data.severity,
      code: one.data.code,
      ...(coding !== undefined && coding.length > 0 ? { details: { coding } } : {}),
      ...(one.data.expression !== undefined ? { expression: one.data.expression } : {}),
    });
  }
  return issue.length > 0 ? { resourceType: "OperationOutcome", issue } : undefined;
}

/** " (conflict, processing)": issue codes come from a required value set, so they are safe in a message. */
export function issueCodesSuffix(outcome: OperationOutcome | undefined): string {
  if (outcome === undefined) return "";
  return ` (${[...new Set(outcome.issue.map((i) => i.code))].join(", ")})`;
}

/**
 * What a log line keeps of a refusal: issue codes and FHIRPath expressions only. The outcome is
 * already free-text-less (safeOutcome), but a log line needs no more than this to find the field.
 */
export function issuesForLog(outcome: OperationOutcome | undefined): { code: string; expression?: string[] }[] {
  return outcome?.issue.map((i) => ({ code: i.code, ...(i.expression !== undefined ? { expression: i.expression } : {}) })) ?? [];
}
