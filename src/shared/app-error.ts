import type { OperationOutcome, OperationOutcomeIssue } from "fhir/r4";

const httpStatus = {
  invalid: 400,
  structure: 400,
  required: 400,
  value: 400,
  login: 401,
  security: 401,
  forbidden: 403,
  "not-found": 404,
  "not-supported": 415,
  conflict: 409,
  "too-long": 413,
  throttled: 429,
  transient: 503,
  exception: 500,
} as const satisfies Partial<Record<OperationOutcomeIssue["code"], number>>;

export type AppErrorCode = keyof typeof httpStatus;

/**
 * The one way to stop a request. It carries a FHIR issue code; the status comes from the table
 * above. Messages name the field, never its value (values can be PHI).
 */
export class AppError extends Error {
  override name = "AppError";
  constructor(
    readonly code: AppErrorCode,
    message: string,
    readonly expression?: string,
    readonly headers: Readonly<Record<string, string>> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  get status(): (typeof httpStatus)[AppErrorCode] {
    return httpStatus[this.code];
  }
}

/** Method not allowed is not an issue-type code; it is answered by the route, see notAllowed(). */
export function operationOutcome(
  severity: OperationOutcomeIssue["severity"],
  code: OperationOutcomeIssue["code"],
  diagnostics: string,
  expression?: string,
): OperationOutcome {
  return {
    resourceType: "OperationOutcome",
    issue: [{ severity, code, diagnostics, ...(expression !== undefined ? { expression: [expression] } : {}) }],
  };
}
