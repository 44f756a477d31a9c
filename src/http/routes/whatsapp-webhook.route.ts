import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "../app-env.js";
import { AppError } from "../../shared/app-error.js";
import { isFromLoopback } from "../peer.js";
import type { WebhookIntake } from "../../delivery/webhook-intake.js";
import { answerChallenge } from "../../delivery/whatsapp/webhook-verify.js";
import type { Clock } from "../../shared/clock.js";

/** /hooks/whatsapp — GET is Meta's verification handshake, POST carries statuses and replies. */
export function whatsappWebhookRoute(deps: { webhook: WebhookIntake; verifyToken: string | undefined; clock: Clock; bodyLimitBytes: number }): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .get("/", (c) => {
      const challenge = answerChallenge(
        { mode: c.req.query("hub.mode"), token: c.req.query("hub.verify_token"), challenge: c.req.query("hub.challenge") },
        deps.verifyToken,
      );
      if (challenge === undefined) throw new AppError("forbidden", "verification token does not match");
      return c.text(challenge, 200);
    })
    .post(
      "/",
      bodyLimit({
        maxSize: deps.bodyLimitBytes,
        onError: () => {
          throw new AppError("too-long", `webhook body is larger than ${deps.bodyLimitBytes} bytes`);
        },
      }),
      async (c) => {
        const raw = new Uint8Array(await c.req.arrayBuffer());
        const accepted = await deps.webhook(raw, c.req.header("x-hub-signature-256"), isFromLoopback(c), deps.clock.now().toISOString(), c.var.requestLog());
        return c.json({ accepted }, 200);
      },
    );
}
