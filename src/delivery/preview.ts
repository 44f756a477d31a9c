import type { FhirResource } from "fhir/r4";
import type { NotDoneReason } from "../shared/not-done-reason.js";
import { toCloudApiRequest, type CloudApiTemplateRequest } from "./whatsapp/cloud-api.request.js";
import type { FhirPort } from "../fhir/fhir.port.js";
import type { Mapping, PhiGuardBlock } from "../mapping/mapping.js";
import type { SlotName } from "../mapping/slots.js";

export type PreviewRule =
  | { ruleId: string; fired: false; why: string }
  | { ruleId: string; fired: true; action: "cancel-pending"; why: string; cancels: string[] }
  | {
      ruleId: string;
      fired: true;
      action: "send";
      why: string;
      templateName: string;
      category: "notification" | "reminder";
      /** ISO instant; absent = immediately. */
      sendAt?: string;
      outcome:
        | { ok: true; request: CloudApiTemplateRequest; renderedText: string; languageCode: string; timeZone: string }
        | { ok: false; reason: NotDoneReason; detail: string; missingSlot?: SlotName; phiGuard?: PhiGuardBlock };
    };

export interface PreviewResult {
  resource: string;
  rulesHash: string;
  evaluatedAt: string;
  rules: PreviewRule[];
}

/**
 * What fhir-notify would do with this resource right now, treating it as newly seen (no previous
 * version): every rule of its type, fired or not and why, and for messages the exact Cloud API
 * request. It reads the patient and references through `fhir` but sends and stores nothing.
 * The request contains the recipient's number, so only the admin API and the CLI expose it.
 */
export async function previewResource(mapping: Mapping, resource: FhirResource, fhir: FhirPort, now: Date): Promise<PreviewResult> {
  const rules: PreviewRule[] = [];
  for (const decision of mapping.explain(resource, undefined, now)) {
    if (!decision.fired) {
      rules.push({ ruleId: decision.ruleId, fired: false, why: decision.why });
      continue;
    }
    const send = decision.matches.find((m) => m.action === "send");
    if (send === undefined) {
      rules.push({
        ruleId: decision.ruleId,
        fired: true,
        action: "cancel-pending",
        why: decision.why,
        cancels: decision.matches.flatMap((m) => (m.cancelsRuleId !== undefined ? [m.cancelsRuleId] : [])),
      });
      continue;
    }
    const prepared = await mapping.prepare(decision.ruleId, resource, fhir, `preview-${decision.ruleId}`);
    rules.push({
      ruleId: decision.ruleId,
      fired: true,
      action: "send",
      why: decision.why,
      templateName: send.templateName,
      category: send.category,
      ...(send.sendAt !== undefined ? { sendAt: send.sendAt.toISOString() } : {}),
      outcome: prepared.ok
        ? { ok: true, request: toCloudApiRequest(prepared.message), renderedText: prepared.renderedText, languageCode: prepared.languageCode, timeZone: prepared.timeZone }
        : {
            ok: false,
            reason: prepared.reason,
            detail: prepared.detail,
            ...(prepared.missingSlot !== undefined ? { missingSlot: prepared.missingSlot } : {}),
            ...(prepared.phiGuard !== undefined ? { phiGuard: prepared.phiGuard } : {}),
          },
    });
  }
  return {
    resource: `${resource.resourceType}/${resource.id ?? "(no id)"}`,
    rulesHash: mapping.rulesHash,
    evaluatedAt: now.toISOString(),
    rules,
  };
}
