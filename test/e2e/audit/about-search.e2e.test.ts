import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Bundle, Communication, SearchParameter } from "fhir/r4";
import { startTestService } from "../../support/start-test-service.js";
import { expectValidR4, fhirJson, post } from "./audit-harness.js";

const definition = JSON.parse(readFileSync(new URL("../../../config/fhir/searchparameter-communication-about.json", import.meta.url), "utf8")) as SearchParameter;

function communication(about: string): Communication {
  return { resourceType: "Communication", status: "completed", about: [{ reference: about }], payload: [{ contentString: "Hello" }] };
}

describe("the Communication `about` search parameter", () => {
  it("is a valid R4 SearchParameter on Communication.about", () => {
    expectValidR4(definition);
    expect(definition).toMatchObject({ code: "about", base: ["Communication"], type: "reference", expression: "Communication.about" });
  });

  it("lets the sandbox find the Communications about one appointment, by reference or bare id", async () => {
    const service = await startTestService({ role: "api" });
    const mine = await post(service, communication("Appointment/apt-7781"));
    await post(service, communication("Appointment/apt-9999"));
    await post(service, communication("DiagnosticReport/apt-7781"));

    const search = (query: string) => fhirJson<Bundle>(`${service.fhirBaseUrl}/Communication?${query}`);
    const byReference = await search("about=Appointment/apt-7781");
    expect(byReference.entry?.map((e) => e.resource?.id)).toEqual([mine.id]);
    const byBareId = await search("about=apt-7781");
    expect(byBareId.entry).toHaveLength(2);
    expect((await search("about=Appointment/nope")).entry ?? []).toHaveLength(0);

    const unknown = await fetch(`${service.fhirBaseUrl}/Communication?abuot=Appointment/apt-7781`);
    expect(unknown.status).toBe(400);
  });
});
