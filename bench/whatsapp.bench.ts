import { createCloudApiClient } from "../src/delivery/whatsapp/cloud-api.client.js";
import type { TemplateMessage } from "../src/shared/template-message.js";
import { createLogger } from "../src/shared/logger.js";
import { startFakeGraphApi } from "../test/fakes/graph-api.server.js";

const concurrency = 64;
const maxMessages = 100_000;

export interface SendBenchResult {
  messages: number;
  concurrency: number;
  elapsedMs: number;
  perSecond: number;
}

/**
 * Messages per second from client.sendTemplate to the fake Graph API's acknowledgement, 64 in
 * flight, loopback only. Measures our client's overhead (validation, JSON, fetch), not Meta.
 */
/** Reminder i: a synthetic 555 number of its own, the parameters a real reminder carries. */
export function benchMessage(i: number): TemplateMessage {
  return {
    to: `+1555${String(1_000_000 + i).slice(-7)}`,
    templateName: "appointment_reminder_v1",
    languageCode: "en_US",
    bodyParameters: ["Alex", "Riverside Clinic", "Tuesday 14 October", "09:30"],
    buttons: [
      { subType: "quick_reply", index: 0, payload: `rc1:CONFIRM:${i}` },
      { subType: "quick_reply", index: 1, payload: `rc1:RESCHEDULE:${i}` },
    ],
    callbackData: `bench_${i}`,
  };
}

export async function benchSend(n: number): Promise<SendBenchResult> {
  const total = Math.min(Math.max(1, Math.floor(n)), maxMessages);
  const graph = await startFakeGraphApi();
  try {
    const client = createCloudApiClient(
      { apiBase: graph.url, graphVersion: "v23.0", phoneNumberId: graph.phoneNumberId, accessToken: graph.accessToken, timeoutMs: 15_000 },
      createLogger("silent"),
    );
    const message = (i: number) => benchMessage(i);

    let next = 0;
    const started = performance.now();
    const lane = async (): Promise<void> => {
      while (next < total) {
        const i = next++;
        await client.sendTemplate(message(i));
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, total) }, lane));
    const elapsedMs = performance.now() - started;
    if (graph.records.length !== total) throw new Error(`fake acknowledged ${graph.records.length} of ${total} messages`);
    return { messages: total, concurrency, elapsedMs: Math.round(elapsedMs), perSecond: Math.round((total / elapsedMs) * 1000) };
  } finally {
    await graph.stop();
  }
}
