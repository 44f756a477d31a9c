/**
 * Takes the screenshots in docs/console/ of the console's main pages: the whole service in sandbox
 * mode (as after `npm start`) with a few notifications (one delivered, one waiting, one not sent
 * for want of consent) and one dead letter, driven by Debian's Chromium headless.
 *
 *   npx tsx scripts/console-screenshots.ts      (needs /usr/bin/chromium and a Redis on 127.0.0.1:6379)
 */
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import type { Appointment } from "fhir/r4";
import { configSchema } from "../src/config/config.schema.js";
import { startService } from "../src/service.js";
import { systemClock } from "../src/shared/clock.js";
import { createLogger } from "../src/shared/logger.js";
import { createMetrics } from "../src/shared/metrics.js";
import { bookedAppointment, fhirJson } from "../test/support/sandbox-booking.js";
import { deleteKeysAt } from "../test/support/redis-prefix.js";
import { waitFor } from "../test/support/wait-for.js";
import { launchChromium } from "../test/console/browser.js";

const out = new URL("../docs/console/", import.meta.url);
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `shots-${randomUUID().slice(0, 8)}`;
const config = configSchema.parse({ http: { port: 0 }, redis: { url: redisUrl, prefix }, log: { level: "silent" } });
config.delivery.quietHours.enabled = false;
const service = await startService({ config, log: createLogger("silent"), clock: systemClock, metrics: createMetrics({ defaultMetrics: false }), outboxStatusDelayMs: 50 });
const browser = await launchChromium();
try {
  const seed = service.sandboxSeed!;
  const post = (a: Appointment) => fhirJson<Appointment & { id: string }>(`${service.fhirBaseUrl}/Appointment`, { method: "POST", body: JSON.stringify(a) });
  await post(bookedAppointment(seed, { startsInHours: 30 }));
  await post(bookedAppointment(seed, { startsInHours: 54 }));
  // A synthetic patient without a Consent: the booking confirmation ends "not sent".
  await fhirJson(`${service.fhirBaseUrl}/Patient/demo-no-consent`, {
    method: "PUT",
    body: JSON.stringify({ resourceType: "Patient", id: "demo-no-consent", active: true, name: [{ given: ["Sam"], family: "Example" }], telecom: [{ system: "phone", value: "+12025550188", use: "mobile" }] }),
  });
  await post(bookedAppointment({ ...seed, patientId: "demo-no-consent" }, { startsInHours: 30 }));
  await waitFor(
    "two delivered and one not sent",
    async () => {
      const list = (await (await fetch(`${service.url}/admin/notifications`)).json()) as { notifications: Array<{ state: string }> };
      return list.notifications.filter((n) => n.state === "delivered").length >= 2 && list.notifications.some((n) => n.state === "not-done");
    },
    20_000,
  );
  await service.queues.enqueue("dead-letter", { queue: "delivery", jobId: "send-demo", name: "send-message", reason: "WhatsApp refused the template parameters (132000)" }, { jobId: "dl_demo" });

  mkdirSync(out, { recursive: true });
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  const shot = (name: string) => page.screenshot({ path: new URL(`${name}.png`, out).pathname, fullPage: true });
  await page.goto(`${service.url}/console`);
  await shot("timeline");
  await page.goto(`${service.url}/console?state=not-done`);
  await page.click("tr[data-delivery] a");
  await page.waitForURL(/\/console\/notifications\//);
  await shot("why-not-sent");
  await page.goto(`${service.url}/console/operations`);
  await shot("operations");
  await page.goto(`${service.url}/console/preview?example=appointment`);
  await Promise.all([page.waitForURL(/\/console\/preview$/), page.locator("form").first().locator('button[type="submit"]').click()]);
  await shot("preview");
  process.stdout.write(`screenshots written to ${out.pathname}\n`);
} finally {
  await browser.close();
  await service.stop();
  await deleteKeysAt(redisUrl, prefix);
}
