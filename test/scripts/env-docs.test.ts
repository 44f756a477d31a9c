import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { endMarker, envDocs, startMarker, withEnvDocs } from "../../scripts/env-docs.js";
import { envVars } from "../../src/config/env.js";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

describe("the README's configuration reference", () => {
  it("is exactly what scripts/env-docs.ts prints (run it with --write after changing the config)", () => {
    const start = readme.indexOf(startMarker);
    const end = readme.indexOf(endMarker);
    expect(start, `README.md lacks ${startMarker}`).toBeGreaterThanOrEqual(0);
    expect(end).toBeGreaterThan(start);
    expect(readme.slice(start + startMarker.length, end)).toBe(`\n${envDocs()}\n`);
  });

  it("names every environment variable and the config key with its default", () => {
    const docs = envDocs();
    for (const v of envVars) expect(docs).toContain(`| \`${v.name}\` | \`${v.path.join(".")}\` |`);
    expect(docs).toContain("| `delivery.rateLimits.perSenderPerSecond` | integer | `80` |");
    expect(docs).toContain("| `fhir.auth.type` | none \\| bearer \\| basic \\| client-credentials \\| smart-backend |");
  });

  it("replaces only the text between the markers", () => {
    const doc = `before\n${startMarker}\nold\n${endMarker}\nafter\n`;
    expect(withEnvDocs(doc, "new")).toBe(`before\n${startMarker}\nnew\n${endMarker}\nafter\n`);
    expect(() => withEnvDocs("no markers", "new")).toThrow(/no <!-- env:start -->/);
  });
});
