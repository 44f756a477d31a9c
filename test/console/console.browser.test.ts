import type { Appointment } from "fhir/r4";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestService } from "../support/start-test-service.js";
import { bookedAppointment, fhirJson } from "../support/sandbox-booking.js";
import { waitFor } from "../support/wait-for.js";
import { launchChromium } from "./browser.js";

/**
 * The console in a real browser against the whole service in sandbox mode (as after `npm start`):
 * one Chromium for the file, one page per test.
 */
let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

async function newPage(): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  // Any script error or CSP violation would show up here.
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(e.message));
  (page as Page & { problems: string[] }).problems = problems;
  return page;
}

const problemsOf = (page: Page) => (page as Page & { problems: string[] }).problems;

describe("the console in Chromium", () => {
  it("loads the timeline, filters it, opens a notification, replays a dead letter and previews a resource", { timeout: 60_000 }, async () => {
    const service = await startTestService();
    const seed = service.sandboxSeed!;
    const booked = await fhirJson<Appointment & { id: string }>(`${service.fhirBaseUrl}/Appointment`, { method: "POST", body: JSON.stringify(bookedAppointment(seed, { startsInHours: 30 })) });
    // The confirmation goes out (the dry-run outbox reports it delivered); the reminder waits for its time.
    await waitFor(
      "the confirmation delivered and the reminder waiting",
      async () => {
        const list = (await (await fetch(`${service.url}/admin/notifications`)).json()) as { notifications: Array<{ ruleId: string; state: string }> };
        return list.notifications.some((n) => n.ruleId === "appointment-booked" && n.state === "delivered") && list.notifications.some((n) => n.ruleId === "appointment-reminder");
      },
      20_000,
    );
    const page = await newPage();

    const timeline = await page.goto(`${service.url}/console`);
    expect(timeline?.status()).toBe(200);
    expect(timeline?.headers()["content-security-policy"]).toContain("default-src 'none'");
    await expect.poll(() => page.locator("tr[data-delivery]").count()).toBe(2);
    expect(await page.evaluate("document.compatMode")).toBe("CSS1Compat");
    expect(await page.locator('a[data-state="delivered"] b').textContent()).toBe("1");
    expect(await page.locator('a[data-state="waiting"] b').textContent()).toBe("1");

    // Filter: the form is a GET, so the URL carries the filter.
    await page.selectOption('select[name="state"]', "waiting");
    await Promise.all([page.waitForURL(/state=waiting/), page.click('button[type="submit"]')]);
    expect(await page.locator("tr[data-delivery]").count()).toBe(1);
    expect(await page.locator("tr[data-delivery] td.mono").first().textContent()).toBe("appointment-reminder");

    // Open it: its page says why it has not gone yet, and what it is about.
    await Promise.all([page.waitForURL(/\/console\/notifications\//), page.click("tr[data-delivery] a")]);
    expect(await page.locator("[data-verdict]").textContent()).toContain("Waiting for its send time");
    expect(await page.textContent("main")).toContain(`Appointment/${booked.id}`);

    // A dead letter whose job is gone (the replay still takes it off the list and says so).
    await service.queues.enqueue("dead-letter", { queue: "delivery", jobId: "send-gone", name: "send-message", reason: "WhatsApp refused the template (132001)" }, { jobId: "dl_browser" });
    await page.click("text=Operations");
    await page.waitForURL(/\/console\/operations$/);
    expect(await page.locator("tr[data-dead-letter]").count()).toBe(1);
    expect(await page.locator('[data-sender="running"]').count()).toBe(1);
    await Promise.all([page.waitForURL(/\/dlq\/dl_browser\/replay$/), page.click("text=Replay…")]);
    expect(await page.textContent("h1")).toBe("Replay this dead letter?");
    await Promise.all([page.waitForURL(/done=replayed\.0\.1/), page.click("text=Yes, replay")]);
    expect(await page.textContent(".notice.good")).toContain("1 were no longer there to retry");
    expect(await page.locator("tr[data-dead-letter]").count()).toBe(0);

    // Preview: the sandbox example for the seeded patient, rendered.
    await page.click("header >> text=Preview");
    await Promise.all([page.waitForURL(/example=appointment/), page.click("text=Load the sandbox example")]);
    await Promise.all([page.waitForURL(/\/console\/preview$/), page.locator("form").first().locator('button[type="submit"]').click()]);
    // The confirmation always; the reminder too when its time (a day before) is still ahead.
    expect(await page.textContent("[data-preview-result] h2")).toMatch(/^Appointment\/\(no id\): [12] message\(s\)$/);
    expect(await page.locator('[data-rule="appointment-booked"] [data-rendered]').textContent()).toContain("Riverside Clinic");

    expect(problemsOf(page)).toEqual([]);
  });
});
