import type { Consent, Patient } from "fhir/r4";
import { describe, expect, it } from "vitest";
import { FakeFhir } from "../fakes/fhir.fake.js";
import { loadFixture } from "../fixtures/fhir/load-fixture.js";
import { hasConsent } from "../../src/mapping/consent.js";
import { testSite } from "./site.js";

const now = new Date("2026-03-02T16:00:00Z");
const jordan = { ...loadFixture("Patient", "jordan-rivera-en"), id: "pat-1001" };
const permit = loadFixture("Consent", "whatsapp-permit-pat-1001");

describe("hasConsent (consent-resource mode)", () => {
  it("accepts an active permit with the configured category and a period covering now", async () => {
    const fhir = new FakeFhir([permit]);
    expect(await hasConsent(jordan, fhir, testSite(), now)).toBe(true);
    expect(fhir.calls).toEqual([expect.stringMatching(/^search Consent\?patient=Patient%2Fpat-1001&status=active&category=/)]);
  });

  it("refuses when a deny provision is active, even next to a permit", async () => {
    expect(await hasConsent(jordan, new FakeFhir([permit, loadFixture("Consent", "whatsapp-deny-pat-1001")]), testSite(), now)).toBe(false);
  });

  it("refuses a nested deny provision", async () => {
    const nested: Consent = { ...permit, provision: { type: "permit", provision: [{ type: "deny" }] } };
    expect(await hasConsent(jordan, new FakeFhir([nested]), testSite(), now)).toBe(false);
  });

  it("refuses a permit that has ended or not yet begun", async () => {
    const ended: Consent = { ...permit, provision: { type: "permit", period: { end: "2026-01-01" } } };
    const future: Consent = { ...permit, provision: { type: "permit", period: { start: "2026-04-01" } } };
    expect(await hasConsent(jordan, new FakeFhir([ended]), testSite(), now)).toBe(false);
    expect(await hasConsent(jordan, new FakeFhir([future]), testSite(), now)).toBe(false);
  });

  it("refuses a permit for another category or an inactive one (the server may ignore search parameters)", async () => {
    const other: Consent = { ...permit, category: [{ coding: [{ system: "http://loinc.org", code: "59284-0" }] }] };
    const inactive: Consent = { ...permit, status: "inactive" };
    expect(await hasConsent(jordan, new FakeFhir([other]), testSite(), now)).toBe(false);
    expect(await hasConsent(jordan, new FakeFhir([inactive]), testSite(), now)).toBe(false);
  });

  it("refuses when there is no Consent at all", async () => {
    expect(await hasConsent(jordan, new FakeFhir(), testSite(), now)).toBe(false);
  });
});

describe("hasConsent (other modes)", () => {
  it("patient-tag mode looks for the configured tag on the Patient", async () => {
    const site = testSite({ consent: { mode: "patient-tag" } });
    const lucia: Patient & { id: string } = { ...loadFixture("Patient", "lucia-garcia-es"), id: "pat-2002" };
    expect(await hasConsent(lucia, new FakeFhir(), site, now)).toBe(true);
    expect(await hasConsent(jordan, new FakeFhir(), site, now)).toBe(false);
  });

  it("none mode trusts the site and makes no FHIR call", async () => {
    const fhir = new FakeFhir();
    expect(await hasConsent(jordan, fhir, testSite({ consent: { mode: "none" } }), now)).toBe(true);
    expect(fhir.calls).toEqual([]);
  });
});
