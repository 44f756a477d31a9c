import { describe, expect, it } from "vitest";
import { auditConfigSchema } from "../../src/audit/audit.config.js";

describe("audit config", () => {
  it("defaults to the fhir-notify systems and the APPWRIT medium", () => {
    expect(auditConfigSchema.parse({})).toEqual({
      identifierSystem: "https://fhir-notify.dev/sid/notification-key",
      wamidSystem: "https://fhir-notify.dev/sid/whatsapp-message-id",
      inboundIdSystem: "https://fhir-notify.dev/sid/whatsapp-inbound-id",
      medium: "APPWRIT",
      extensionBase: "https://fhir-notify.dev/fhir/StructureDefinition/",
      tagSystem: "https://fhir-notify.dev/fhir/CodeSystem/tag",
    });
  });

  it("rejects a medium code other than APPWRIT or WRITTEN, an extension base without a trailing slash, and unknown keys", () => {
    expect(auditConfigSchema.safeParse({ medium: "SMSWRIT" }).success).toBe(false);
    expect(auditConfigSchema.safeParse({ extensionBase: "https://hospital.example.org/fhir/StructureDefinition" }).success).toBe(false);
    expect(auditConfigSchema.safeParse({ identifierSytem: "https://hospital.example.org/sid/key" }).success).toBe(false);
  });
});
