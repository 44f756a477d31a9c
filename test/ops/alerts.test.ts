import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createMetrics } from "../../src/shared/metrics.js";

interface Rule {
  alert: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const file = parse(readFileSync(new URL("../../config/prometheus/alerts.yml", import.meta.url), "utf8")) as { groups: { name: string; rules: Rule[] }[] };
const rules = file.groups.flatMap((g) => g.rules);

describe("the example Prometheus alert rules", () => {
  it("only use metrics fhir-notify exports, so a rename cannot silently disable an alert", () => {
    const exported = new Set(createMetrics({ defaultMetrics: false }).registry.getMetricsAsArray().map((m) => m.name));
    const used = rules.flatMap((r) => [...r.expr.matchAll(/fhir_notify_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, "")));
    expect(used.length).toBeGreaterThan(0);
    for (const name of used) expect(exported, `${name} is not exported`).toContain(name);
  });

  it("give every alert a severity and a summary", () => {
    for (const r of rules) {
      expect(r.labels?.severity, r.alert).toMatch(/^(page|ticket)$/);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
    }
  });
});
