import { describe, expect, it } from "vitest";
import type { Appointment } from "fhir/r4";
import { loadFixture } from "../fixtures/fhir/load-fixture.js";
import { consoleWorld } from "./support.js";

const post = (fields: Record<string, string>) => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "same-origin" },
  body: new URLSearchParams(fields).toString(),
});

describe("the console's preview", () => {
  it("shows which rules fire for a pasted resource and the message it would send, without the number or the pasted JSON", async () => {
    const { app } = consoleWorld();
    const appointment = loadFixture("Appointment", "booked-en-chicago");
    const res = await app.request("/console/preview", post({ json: JSON.stringify({ ...appointment, comment: "ZQXCOMMENTPSYCH" }) }));
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("Appointment/apt-7781: 2 message(s)");
    expect(html).toMatch(/data-rule="appointment-booked" data-fired="send"/);
    expect(html).toMatch(/data-rule="appointment-cancelled" data-fired="no">.*does not apply \(trigger.when is false\)/s);
    expect(html).toContain("Riverside Clinic, 12 Main St");
    expect(html).not.toContain("12025550143");
    expect(html).not.toContain("ZQXCOMMENTPSYCH");
  });

  it("reads a resource from the FHIR server by type and id, and says why a message would be blocked", async () => {
    const { app, fhir } = consoleWorld();
    const appointment = loadFixture("Appointment", "booked-en-chicago") as Appointment & { id: string };
    fhir.put(appointment);
    fhir.remove("Consent", "cons-wa-1001");
    const html = await (await app.request("/console/preview", post({ type: "Appointment", id: appointment.id }))).text();
    expect(html).toContain("But it would not be sent: the patient has not consented to WhatsApp messages");
  });

  it("answers bad input in plain words", async () => {
    const { app } = consoleWorld();
    const notJson = await app.request("/console/preview", post({ json: "{nope" }));
    expect(notJson.status).toBe(400);
    expect(await notJson.text()).toContain("That is not valid JSON.");
    expect((await app.request("/console/preview", post({ json: '{"id": "x"}' }))).status).toBe(400);
    const missing = await app.request("/console/preview", post({ type: "Appointment", id: "does-not-exist" }));
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain("The FHIR server has no Appointment/does-not-exist.");
    expect((await app.request("/console/preview", post({ json: "x".repeat(70 * 1024) }))).status).toBe(413);
  });
});
