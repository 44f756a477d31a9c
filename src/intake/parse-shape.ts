import type { z } from "zod";
import { AppError } from "../shared/app-error.js";

/**
 * zod-parse one part of a notification. zod messages can quote the value they received (PHI), so
 * the error keeps only the path, as a FHIRPath-like expression under `root`.
 */
export function parseShape<S extends z.ZodType>(schema: S, value: unknown, root: string, label: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const path = r.error.issues[0]?.path ?? [];
  const expression = root + path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
  throw new AppError("structure", `${label} is missing a required element or has one of the wrong type`, expression);
}

/** Drop undefined values so optional properties stay absent rather than present-and-undefined. */
export function definedOnly<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}
