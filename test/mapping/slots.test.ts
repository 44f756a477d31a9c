import type { Appointment } from "fhir/r4";
import { describe, expect, it } from "vitest";
import { loadFixture } from "../fixtures/fhir/load-fixture.js";
import { firstGivenName, portalLinkToken, renderSlot, replyPayload, replyToken, slotNames, type ReplyAction, type SlotContext } from "../../src/mapping/slots.js";
import { testSite } from "./site.js";

function ctx(overrides: Partial<SlotContext> = {}): SlotContext {
  return {
    resource: loadFixture("Appointment", "booked-en-chicago"),
    patient: loadFixture("Patient", "jordan-rivera-en"),
    site: testSite(),
    locale: "en-US",
    timeZone: "America/Chicago",
    locationRef: "Location/loc-riverside",
    practitioner: loadFixture("Practitioner", "prac-22"),
    pharmacy: undefined,
    callbackData: "dlv_1",
    ...overrides,
  };
}

describe("firstGivenName", () => {
  it("prefers the usual name, then the official one, then the first listed", () => {
    expect(firstGivenName([{ use: "official", given: ["Jordan"] }, { use: "usual", given: ["Jordy"] }])).toBe("Jordy");
    expect(firstGivenName([{ use: "nickname", given: ["JJ"] }, { use: "official", given: ["Jordan"] }])).toBe("Jordan");
    expect(firstGivenName([{ use: "nickname", given: ["JJ"] }])).toBe("JJ");
  });

  it("returns only the first word of the first given name, never the family name", () => {
    expect(firstGivenName([{ use: "official", family: "García López", given: ["Lucía María", "Carmen"] }])).toBe("Lucía");
  });

  it("skips names without a given part and returns undefined when none has one", () => {
    expect(firstGivenName([{ use: "usual", family: "Rivera" }, { use: "official", given: ["  ", "Ana"] }])).toBe("Ana");
    expect(firstGivenName([{ family: "Rivera", text: "Jordan Rivera" }])).toBeUndefined();
    expect(firstGivenName(undefined)).toBeUndefined();
  });
});

describe("appointment date and time", () => {
  const at = (start: string, timeZone: string, locale: string) => {
    const resource: Appointment = { ...loadFixture("Appointment", "booked-en-chicago"), start };
    return [renderSlot("appointmentDate", ctx({ resource, timeZone, locale })), renderSlot("appointmentTime", ctx({ resource, timeZone, locale }))];
  };

  it("formats in the Location's zone, not the offset the server wrote", () => {
    expect(at("2026-03-10T09:30:00-05:00", "America/Chicago", "en-US")).toEqual(["Tuesday, March 10", "9:30 AM"]);
    expect(at("2026-03-10T14:30:00Z", "America/New_York", "en-US")).toEqual(["Tuesday, March 10", "10:30 AM"]);
  });

  it("is DST-correct on both sides of the spring change", () => {
    expect(at("2026-03-07T15:30:00Z", "America/Chicago", "en-US")).toEqual(["Saturday, March 7", "9:30 AM"]);
    expect(at("2026-03-09T14:30:00Z", "America/Chicago", "en-US")).toEqual(["Monday, March 9", "9:30 AM"]);
  });

  it("formats in the patient's language", () => {
    expect(at("2026-03-31T08:15:00Z", "Europe/Madrid", "es")).toEqual(["martes, 31 de marzo", "10:15"]);
  });

  it("crosses midnight into the local date", () => {
    expect(at("2026-03-11T03:30:00Z", "America/Chicago", "en-US")).toEqual(["Tuesday, March 10", "10:30 PM"]);
  });

  it("has no value without a start", () => {
    const { start: _omit, ...noStart } = loadFixture("Appointment", "booked-en-chicago");
    expect(renderSlot("appointmentDate", ctx({ resource: noStart }))).toBeUndefined();
  });
});

describe("places and people", () => {
  it("names a Location only by its configured label, never Location.name", () => {
    expect(renderSlot("locationLabel", ctx())).toBe("Riverside Clinic, 12 Main St");
    expect(renderSlot("locationLabel", ctx({ locationRef: "Location/not-configured" }))).toBeUndefined();
  });

  it("renders a practitioner as prefix and family name only", () => {
    expect(renderSlot("practitionerName", ctx())).toBe("Dr. Lima");
    expect(renderSlot("practitionerName", ctx({ practitioner: undefined }))).toBeUndefined();
  });

  it("takes pharmacy and organization values from configuration", () => {
    const pharmacy = { name: "Riverside Pharmacy", addressLine: "12 Main St", hours: "9-7" };
    expect(renderSlot("pharmacyName", ctx({ pharmacy }))).toBe("Riverside Pharmacy");
    expect(renderSlot("pharmacyAddressLine", ctx({ pharmacy }))).toBe("12 Main St");
    expect(renderSlot("pharmacyHours", ctx({ pharmacy }))).toBe("9-7");
    expect(renderSlot("organizationName", ctx())).toBe("Riverside Health");
    expect(renderSlot("organizationPhone", ctx())).toBe("+1 312 555 0100");
    expect(renderSlot("portalLink", ctx())).toBe("https://portal.example.org");
  });

  it("has exactly the documented allowlist", () => {
    expect([...slotNames].sort()).toEqual(
      ["appointmentDate", "appointmentTime", "locationLabel", "organizationName", "organizationPhone", "patientFirstName", "pharmacyAddressLine", "pharmacyHours", "pharmacyName", "portalLink", "practitionerName"].sort(),
    );
  });
});

describe("tokens", () => {
  it("derives stable, opaque tokens from the delivery id and the secret", () => {
    const site = testSite();
    expect(portalLinkToken(site, "dlv_1")).toBe(portalLinkToken(site, "dlv_1"));
    expect(portalLinkToken(site, "dlv_1")).not.toBe(portalLinkToken(site, "dlv_2"));
    expect(portalLinkToken(site, "dlv_1")).not.toBe(portalLinkToken(testSite({ portal: { url: "https://portal.example.org", tokenSecret: "another-secret-0123456789" } }), "dlv_1"));
    expect(portalLinkToken(site, "dlv_1")).toMatch(/^[A-Za-z0-9_-]{12}$/);
  });

  it("builds short reply tokens that name no identifier", () => {
    const token = replyToken(testSite(), "dlv_src_appointment-reminder_Appointment_apt-7781_abc");
    expect(token).toMatch(/^[A-Za-z0-9_-]{8}$/);
    expect(token).not.toContain("7781");
    expect(token).not.toBe(portalLinkToken(testSite(), "dlv_src_appointment-reminder_Appointment_apt-7781_abc").slice(0, 8));
  });

  it("builds quick-reply payloads only from the action word and the opaque token", () => {
    const token = replyToken(testSite(), "dlv_src_appointment-reminder_Appointment_apt-7781_abc");
    expect(replyPayload("CONFIRM", token)).toBe(`fn1:CONFIRM:${token}`);
    // Whatever reaches the builder by mistake (a resource id, a word outside the list) never reaches Meta.
    expect(() => replyPayload("CONFIRM", "apt-7781:Patient/1001")).toThrow(/fn1:<ACTION>:<token>/);
    expect(() => replyPayload("HIV_TEST" as ReplyAction, token)).toThrow(/fn1:<ACTION>:<token>/);
  });
});
