/** The resource types whose changes can become patient messages. */
export const triggerTypes = ["Appointment", "MedicationRequest", "MedicationDispense", "DiagnosticReport", "Task"] as const;
export type TriggerType = (typeof triggerTypes)[number];
