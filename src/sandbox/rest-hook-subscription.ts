import { badRequest, matchesSearchRequest, OperationOutcomeError } from "@medplum/core";
import { z } from "zod";
import { parseCriteria } from "./search-request.js";
import type { Interaction, StoredResource } from "./sandbox-repository.js";

/** HAPI's channel extensions; see fhir-notifications.md §3. Checked in HAPI's HapiExtensions.java. */
export const sendDeleteMessagesUrl = "http://hapifhir.io/fhir/StructureDefinition/subscription-send-delete-messages";
export const deliveryRetryCountUrl = "http://hapifhir.io/fhir/StructureDefinition/subscription-delivery-retry-count";

/** Retries after the first attempt when the Subscription does not say (HAPI's default is similar). */
const defaultRetries = 3;
const maxRetries = 10;

// Token characters from RFC 9110 §5.6.2: what fetch() accepts as a header name.
const headerName = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const extension = z.object({ url: z.string(), valueBoolean: z.boolean().optional(), valueInteger: z.number().int().optional() });

const subscriptionSchema = z.object({
  resourceType: z.literal("Subscription"),
  id: z.string(),
  status: z.enum(["requested", "active", "error", "off"]),
  criteria: z.string().min(1),
  channel: z.object({
    type: z.string(),
    endpoint: z.string().optional(),
    payload: z.string().optional(),
    header: z.array(z.string()).optional(),
    extension: z.array(extension).optional(),
  }),
});

/** What delivery needs from a Subscription, already checked. */
export interface RestHook {
  readonly id: string;
  readonly status: "requested" | "active" | "error" | "off";
  readonly endpoint: string;
  readonly payload: string | undefined;
  readonly headers: ReadonlyArray<readonly [name: string, value: string]>;
  readonly sendDeletes: boolean;
  readonly maxAttempts: number;
  readonly criteria: ReturnType<typeof parseCriteria>;
}

function invalid(message: string, expression: string): never {
  throw new OperationOutcomeError(badRequest(message, expression));
}

/** Parses and checks a Subscription; throws an OperationOutcomeError naming the field (never its value). */
export function parseRestHook(resource: StoredResource): RestHook {
  const parsed = subscriptionSchema.safeParse(resource);
  if (!parsed.success) {
    const path = parsed.error.issues[0]?.path.join(".") ?? "";
    invalid("invalid Subscription", path === "" ? "Subscription" : `Subscription.${path}`);
  }
  const { channel, criteria, id, status } = parsed.data;
  if (channel.type !== "rest-hook") invalid("only rest-hook channels are supported by the sandbox server", "Subscription.channel.type");
  const endpoint = channel.endpoint ?? invalid("rest-hook needs an endpoint", "Subscription.channel.endpoint");
  if (!URL.canParse(endpoint) || !/^https?:$/.test(new URL(endpoint).protocol)) {
    invalid("endpoint must be an http(s) URL", "Subscription.channel.endpoint");
  }
  const payload = channel.payload;
  // The media type is compared without parameters (";charset=utf-8"); XML is not supported.
  if (payload !== undefined && !["application/fhir+json", "application/json"].includes(payload.split(";")[0]?.trim().toLowerCase() ?? "")) {
    invalid("payload must be application/fhir+json", "Subscription.channel.payload");
  }
  const headers = (channel.header ?? []).map((line, i): [string, string] => {
    // R4 says "Name: value"; HAPI splits on the first colon only and trims both sides.
    const colon = line.indexOf(":");
    const name = colon < 0 ? "" : line.slice(0, colon).trim();
    if (!headerName.test(name)) invalid("header must read 'Name: value'", `Subscription.channel.header[${i}]`);
    return [name, line.slice(colon + 1).trim()];
  });
  const ext = (u: string) => channel.extension?.find((e) => e.url === u);
  const retries = ext(deliveryRetryCountUrl)?.valueInteger ?? defaultRetries;
  return {
    id,
    status,
    endpoint,
    payload,
    headers,
    sendDeletes: ext(sendDeleteMessagesUrl)?.valueBoolean === true,
    maxAttempts: 1 + Math.min(Math.max(retries, 0), maxRetries),
    criteria: parseCriteria(criteria),
  };
}

/**
 * The server's part of a Subscription write: check it, and move `requested` to `active`
 * (R4 subscription.html#lifecycle: only the server activates). A re-activated Subscription
 * loses the old `error` text.
 */
export function prepareSubscription(resource: StoredResource): StoredResource {
  const hook = parseRestHook(resource);
  if (hook.status !== "requested") return resource;
  const { error: _error, ...rest } = resource as StoredResource & { error?: string };
  return { ...rest, status: "active" } as StoredResource;
}

/** Whether this change should be delivered to this Subscription. */
export function shouldNotify(hook: RestHook, interaction: Interaction, resource: StoredResource): boolean {
  if (hook.status !== "active") return false;
  if (interaction === "delete" && !hook.sendDeletes) return false;
  return hook.criteria.resourceType === resource.resourceType && matchesSearchRequest(resource, hook.criteria);
}

export interface HookRequest {
  readonly method: "PUT" | "POST" | "DELETE";
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string | undefined;
}

/**
 * R4 rest-hook (codesystem-subscription-channel-type): without a payload the server POSTs an
 * empty body to the endpoint; with one, the endpoint is a service base and the server PUTs
 * the resource to {endpoint}/{Type}/{id}. Deletes follow HAPI: DELETE {endpoint}/{Type}/{id}.
 */
export function buildHookRequest(hook: RestHook, interaction: Interaction, resource: StoredResource): HookRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of hook.headers) headers[name] = value;
  // The endpoint is a service base here, so "base/" and "base" name the same place.
  const instanceUrl = `${hook.endpoint.replace(/\/+$/, "")}/${resource.resourceType}/${encodeURIComponent(resource.id)}`;
  if (interaction === "delete") return { method: "DELETE", url: instanceUrl, headers, body: undefined };
  if (hook.payload === undefined) return { method: "POST", url: hook.endpoint, headers, body: undefined };
  return { method: "PUT", url: instanceUrl, headers: { ...headers, "content-type": hook.payload }, body: JSON.stringify(resource) };
}
