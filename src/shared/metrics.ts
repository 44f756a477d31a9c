import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * Prometheus metrics. Label values are drawn from fixed vocabularies (source names from config,
 * resource types, rule ids, reason codes, error classes): never ids, names or numbers.
 */
export function createMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: "fhir_notify_" });
  const registers = [registry];

  return {
    registry,
    notificationsReceived: new Counter({
      name: "fhir_notify_notifications_received_total",
      help: "FHIR notifications accepted at intake, by source, resource type and shape",
      labelNames: ["source", "type", "shape"] as const,
      registers,
    }),
    notificationsRejected: new Counter({
      name: "fhir_notify_notifications_rejected_total",
      help: "FHIR notifications rejected at intake, by source and issue code",
      labelNames: ["source", "code"] as const,
      registers,
    }),
    notificationsIgnored: new Counter({
      name: "fhir_notify_notifications_ignored_total",
      help: "Authentic notifications for types fhir-notify does not act on",
      labelNames: ["source"] as const,
      registers,
    }),
    decisions: new Counter({
      name: "fhir_notify_decisions_total",
      help: "Outcomes of processing a resource version, by outcome (queued, duplicate, cancelled, skipped, gone, no-rule) and reason code",
      labelNames: ["outcome", "reason"] as const,
      registers,
    }),
    messages: new Counter({
      name: "fhir_notify_messages_total",
      help: "Message state changes by template and the state entered (accepted, sent, delivered, read, failed, not-done); a status that leaves the state as it was (a repeated sent, a delivered after read) is not counted",
      labelNames: ["template", "state"] as const,
      registers,
    }),
    notDone: new Counter({
      name: "fhir_notify_not_done_total",
      help: "Notifications not sent, by reason code",
      labelNames: ["reason"] as const,
      registers,
    }),
    sendErrors: new Counter({
      name: "fhir_notify_send_errors_total",
      help: "Send attempts that did not reach WhatsApp's acceptance, by class (WhatsApp error classes; fhir-unavailable: deferred while FHIR could not be read)",
      labelNames: ["class"] as const,
      registers,
    }),
    communicationWrites: new Counter({
      name: "fhir_notify_communication_writes_total",
      help: "Communication write-backs by result (created, updated, unchanged, failed, foreign-match)",
      labelNames: ["result"] as const,
      registers,
    }),
    webhookEvents: new Counter({
      name: "fhir_notify_webhook_events_total",
      help: "WhatsApp webhook items by kind (status, inbound, ignored)",
      labelNames: ["kind"] as const,
      registers,
    }),
    templateAlerts: new Counter({
      name: "fhir_notify_template_alerts_total",
      help: "Template governance alerts by template and kind (held, released, status-notice, quality, category-pending, billed-as-marketing); template is 'other' for names not in mappings/templates",
      labelNames: ["template", "kind"] as const,
      registers,
    }),
    sendsDeferred: new Counter({
      name: "fhir_notify_sends_deferred_total",
      help: "Send attempts put off without using an attempt, by reason (messaging-budget, template-paused)",
      labelNames: ["reason"] as const,
      registers,
    }),
    messagingBudgetAlerts: new Counter({
      name: "fhir_notify_messaging_budget_alerts_total",
      help: "Times the unique-recipient budget passed its alert share (delivery.messagingBudget.alertAtRatio) in a 24 h window",
      registers,
    }),
    pricedMessages: new Counter({
      name: "fhir_notify_priced_messages_total",
      help: "Messages WhatsApp reported a price for, by template, pricing category and whether billable (counted once per message)",
      labelNames: ["template", "category", "billable"] as const,
      registers,
    }),
    unknownOutcomes: new Counter({
      name: "fhir_notify_unknown_outcomes_total",
      help: "Sends whose outcome was unknown (the request may have reached Meta), by event: opened, decided (a status webhook or another record came first), resent (no status within delivery.unknownOutcomeWindowMinutes)",
      labelNames: ["event"] as const,
      registers,
    }),
    unknownOutcomesPending: new Gauge({
      name: "fhir_notify_unknown_outcomes_pending",
      help: "Sends whose outcome is still unknown, waiting for a status webhook or the end of the unknown-outcome window (GET /admin/unknown-outcomes lists them)",
      registers,
    }),
    senderPaused: new Gauge({ name: "fhir_notify_sender_paused", help: "1 while the WhatsApp sender is halted", registers }),
    queueDepth: new Gauge({
      name: "fhir_notify_queue_jobs",
      help: "Jobs per queue and state",
      labelNames: ["queue", "state"] as const,
      registers,
    }),
    queueOldestWaitingSeconds: new Gauge({
      name: "fhir_notify_queue_oldest_waiting_seconds",
      help: "Age of the oldest job waiting for a worker, per queue (0 when none waits); counted from when it became due or last ran",
      labelNames: ["queue"] as const,
      registers,
    }),
    deadLetterJobs: new Gauge({ name: "fhir_notify_dead_letter_jobs", help: "Jobs parked in the dead-letter queue awaiting an operator", registers }),
    subscriptions: new Gauge({
      name: "fhir_notify_subscriptions",
      help: "fhir-notify's Subscriptions on the FHIR server, by source and server-side status (requested, active, error, off)",
      labelNames: ["source", "status"] as const,
      registers,
    }),
    subscriptionsUnhealthy: new Gauge({
      name: "fhir_notify_subscriptions_unhealthy",
      help: "Our Subscriptions the FHIR server is not delivering through: error, off, or still requested after ops.subscriptionActivationSeconds",
      labelNames: ["source"] as const,
      registers,
    }),
    heartbeatsMissed: new Counter({
      name: "fhir_notify_subscription_heartbeats_missed_total",
      help: "Checks that found a topic subscription silent for more than 1.5 heartbeat periods (each queues a catch-up search)",
      labelNames: ["source"] as const,
      registers,
    }),
    subscriptionCheckFailures: new Counter({
      name: "fhir_notify_subscription_check_failures_total",
      help: "Failed attempts to list our Subscriptions on the FHIR server",
      registers,
    }),
    outboundLatency: new Histogram({
      name: "fhir_notify_outbound_call_seconds",
      help: "Latency of calls to the FHIR server and the WhatsApp API",
      labelNames: ["peer", "op"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
