#!/usr/bin/env node
// The CLI runs the TypeScript sources through tsx, so `npx fhir-notify` works from a clone
// without a build step.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/cli.ts");
