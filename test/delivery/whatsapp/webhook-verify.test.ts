import { describe, expect, it } from "vitest";
import { answerChallenge } from "../../../src/delivery/whatsapp/webhook-verify.js";

const verifyToken = "verify-me-9b2e";

describe("answerChallenge", () => {
  it("echoes the challenge when Meta subscribes with our verify token", () => {
    expect(answerChallenge({ mode: "subscribe", token: verifyToken, challenge: "1158201444" }, verifyToken)).toBe("1158201444");
  });

  it.each([
    ["the token is wrong", { mode: "subscribe", token: "verify-me-9b2f", challenge: "1" }],
    ["the token has another length", { mode: "subscribe", token: `${verifyToken}x`, challenge: "1" }],
    ["the token is missing", { mode: "subscribe", challenge: "1" }],
    ["the mode is not subscribe", { mode: "unsubscribe", token: verifyToken, challenge: "1" }],
    ["the mode is missing", { token: verifyToken, challenge: "1" }],
    ["the challenge is missing", { mode: "subscribe", token: verifyToken }],
    ["the challenge is empty", { mode: "subscribe", token: verifyToken, challenge: "" }],
    ["the challenge would reflect markup", { mode: "subscribe", token: verifyToken, challenge: "<script>x</script>" }],
    ["the challenge is absurdly long", { mode: "subscribe", token: verifyToken, challenge: "9".repeat(257) }],
  ])("refuses when %s", (_, query) => {
    expect(answerChallenge(query, verifyToken)).toBeUndefined();
  });

  it("refuses every handshake when no verify token is configured", () => {
    expect(answerChallenge({ mode: "subscribe", token: "", challenge: "1" }, undefined)).toBeUndefined();
    expect(answerChallenge({ mode: "subscribe", token: "", challenge: "1" }, "")).toBeUndefined();
  });
});
