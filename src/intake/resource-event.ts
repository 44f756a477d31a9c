export type Interaction = "create" | "update" | "delete" | "unknown";

export type NotificationShape =
  | "rest-hook-empty"
  | "rest-hook-resource"
  | "rest-hook-delete"
  | "medplum"
  | "topic-r4"
  | "topic-r4b"
  | "topic-r5"
  | "azure-event-grid"
  | "google-pubsub"
  | "poll";

/**
 * Every notification shape becomes this. It is a *hint*: the worker re-reads the resource from
 * the FHIR server before deciding anything. It never carries the resource body into Redis.
 */
export interface ResourceEvent {
  source: string;
  resourceType: string;
  id: string;
  versionId?: string;
  interaction: Interaction;
  eventNumber?: string;
  receivedAt: string;
  shape: NotificationShape;
}
