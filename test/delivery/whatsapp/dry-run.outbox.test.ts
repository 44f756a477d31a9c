import { afterEach, describe, expect, it, vi } from "vitest";
import { createDryRunOutbox } from "../../../src/delivery/whatsapp/dry-run.outbox.js";
import type { StatusUpdate } from "../../../src/delivery/whatsapp/webhook.schema.js";
import { SendError } from "../../../src/delivery/whatsapp/whatsapp.port.js";
import { manualClock } from "../../../src/shared/clock.js";
import { reminderMessage } from "../../fixtures/whatsapp/template-message.js";

const reminder = reminderMessage;

afterEach(() => {
  vi.useRealTimers();
});

describe("createDryRunOutbox", () => {
  it("records exactly the JSON the Cloud API would receive (whatsapp-cloud-api.md §2.1)", async () => {
    const clock = manualClock("2025-10-13T09:00:00Z");
    const outbox = createDryRunOutbox({ clock });
    const result = await outbox.sendTemplate(reminder());

    expect(outbox.mode).toBe("dry-run");
    expect(result.messageStatus).toBe("accepted");
    expect(result.wamid).toMatch(/^wamid\.dryrun\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(outbox.list()).toEqual([
      {
        at: "2025-10-13T09:00:00.000Z",
        wamid: result.wamid,
        request: JSON.parse(`{ "messaging_product": "whatsapp", "recipient_type": "individual", "to": "15557654321", "type": "template",
          "biz_opaque_callback_data": "att_01J9Z6Q4M7X2",
          "template": { "name": "appointment_reminder_v1", "language": { "code": "en_US" },
            "components": [
              { "type": "body", "parameters": [ { "type": "text", "text": "Alex" }, { "type": "text", "text": "Riverside Clinic" },
                  { "type": "text", "text": "Tuesday 14 October" }, { "type": "text", "text": "09:30" } ] },
              { "type": "button", "sub_type": "quick_reply", "index": "0",
                "parameters": [ { "type": "payload", "payload": "rc1:CONFIRM:q7Hk2" } ] },
              { "type": "button", "sub_type": "quick_reply", "index": "1",
                "parameters": [ { "type": "payload", "payload": "rc1:RESCHEDULE:q7Hk2" } ] } ] } }`),
      },
    ]);
    outbox.close();
  });

  it("synthesises sent and then delivered, with the callback data, after the delay", async () => {
    vi.useFakeTimers();
    const clock = manualClock("2025-10-13T09:00:00Z");
    const updates: StatusUpdate[] = [];
    const outbox = createDryRunOutbox({ clock, statusDelayMs: 200, onStatus: (u) => void updates.push(u) });
    const { wamid } = await outbox.sendTemplate(reminder());

    await vi.advanceTimersByTimeAsync(199);
    expect(updates).toEqual([]);
    clock.advance(200);
    await vi.advanceTimersByTimeAsync(1);
    expect(updates).toEqual([
      { wamid, status: "sent", timestamp: "2025-10-13T09:00:00.200Z", callbackData: "att_01J9Z6Q4M7X2" },
      { wamid, status: "delivered", timestamp: "2025-10-13T09:00:00.200Z", callbackData: "att_01J9Z6Q4M7X2" },
    ]);
    outbox.close();
  });

  it("waits for an async status handler before reporting delivered", async () => {
    vi.useFakeTimers();
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const outbox = createDryRunOutbox({
      clock: manualClock("2025-10-13T09:00:00Z"),
      statusDelayMs: 0,
      onStatus: async (u) => {
        order.push(`start ${u.status}`);
        if (u.status === "sent") await gate;
        order.push(`end ${u.status}`);
      },
    });
    await outbox.sendTemplate(reminder());
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual(["start sent"]);
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual(["start sent", "end sent", "start delivered", "end delivered"]);
    outbox.close();
  });

  it("still reports delivered when the handler failed on sent", async () => {
    vi.useFakeTimers();
    const seen: string[] = [];
    const outbox = createDryRunOutbox({
      clock: manualClock("2025-10-13T09:00:00Z"),
      statusDelayMs: 0,
      onStatus: (u) => {
        seen.push(u.status);
        if (u.status === "sent") throw new Error("ledger down");
      },
    });
    await outbox.sendTemplate(reminder());
    await vi.advanceTimersByTimeAsync(0);
    expect(seen).toEqual(["sent", "delivered"]);
    outbox.close();
  });

  it("sends no synthetic status after close", async () => {
    vi.useFakeTimers();
    const onStatus = vi.fn();
    const outbox = createDryRunOutbox({ clock: manualClock("2025-10-13T09:00:00Z"), onStatus });
    await outbox.sendTemplate(reminder());
    outbox.close();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(onStatus).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("keeps only the newest entries up to its capacity", async () => {
    const outbox = createDryRunOutbox({ clock: manualClock("2025-10-13T09:00:00Z"), capacity: 2 });
    for (const cb of ["a1", "a2", "a3"]) await outbox.sendTemplate(reminder({ callbackData: cb }));
    expect(outbox.list().map((e) => e.request.biz_opaque_callback_data)).toEqual(["a2", "a3"]);
  });

  it("hands out copies, so callers cannot change what was recorded", async () => {
    const outbox = createDryRunOutbox({ clock: manualClock("2025-10-13T09:00:00Z") });
    await outbox.sendTemplate(reminder());
    outbox.list()[0]!.request.to = "0";
    expect(outbox.list()[0]!.request.to).toBe("15557654321");
  });

  it.each([
    ["a template name with capitals", { templateName: "Appointment_Reminder" }],
    ["a template name with a dash", { templateName: "appointment-reminder" }],
    ["an empty parameter", { bodyParameters: ["Alex", "", "Tuesday", "09:30"] }],
    ["a blank parameter", { bodyParameters: ["Alex", "   ", "Tuesday", "09:30"] }],
    ["a new line in a parameter", { bodyParameters: ["Alex", "Riverside\nClinic", "Tuesday", "09:30"] }],
    ["a tab in a parameter", { bodyParameters: ["Alex", "Riverside\tClinic", "Tuesday", "09:30"] }],
    ["five consecutive spaces", { bodyParameters: ["Alex", "Riverside     Clinic", "Tuesday", "09:30"] }],
    ["more than 1,024 characters of parameters", { bodyParameters: ["A".repeat(600), "B".repeat(500)] }],
    ["a number that is not international", { to: "0612" }],
    ["an empty quick-reply payload", { buttons: [{ subType: "quick_reply" as const, index: 0, payload: "" }] }],
    ["an empty callback id", { callbackData: "" }],
  ])("rejects %s like the real API would, and records nothing", async (_, overrides) => {
    const outbox = createDryRunOutbox({ clock: manualClock("2025-10-13T09:00:00Z") });
    const err: unknown = await outbox.sendTemplate(reminder(overrides)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SendError);
    expect((err as SendError).failure).toBe("template");
    expect((err as SendError).message).not.toContain("Riverside");
    expect(outbox.list()).toEqual([]);
  });

  it("accepts exactly four consecutive spaces, as Meta does", async () => {
    const outbox = createDryRunOutbox({ clock: manualClock("2025-10-13T09:00:00Z") });
    await expect(outbox.sendTemplate(reminder({ bodyParameters: ["Alex", "Riverside    Clinic", "Tuesday", "09:30"] }))).resolves.toMatchObject({
      messageStatus: "accepted",
    });
  });
});
