import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";

/** What the bench needs of the fake Graph API when it runs in its own process. */
export interface RemoteGraphApi {
  url: string;
  phoneNumberId: string;
  accessToken: string;
  /** Messages the fake accepted so far. */
  accepted(): Promise<number>;
  stop(): Promise<void>;
}

type Reply = { op: "ready"; url: string; phoneNumberId: string; accessToken: string } | { op: "accepted"; count: number };

/**
 * The fake Graph API (test/fakes) in a child process, as Meta's servers are remote: the bench then
 * measures fhir-notify's own work, not the fake's request parsing and validation on the same core.
 */
export function startGraphApiProcess(): Promise<RemoteGraphApi> {
  const child = fork(fileURLToPath(new URL("./graph-api-worker.ts", import.meta.url)), [], { execArgv: ["--import", "tsx"], stdio: "inherit" });
  const waiting: ((count: number) => void)[] = [];
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`fake Graph API process exited with ${String(code)}`)));
    child.on("message", (m: Reply) => {
      if (m.op === "accepted") waiting.shift()?.(m.count);
      else
        resolve({
          url: m.url,
          phoneNumberId: m.phoneNumberId,
          accessToken: m.accessToken,
          accepted: () =>
            new Promise((r) => {
              waiting.push(r);
              child.send({ op: "accepted" });
            }),
          stop: () =>
            new Promise((r) => {
              child.removeAllListeners("exit");
              child.once("exit", () => r());
              child.send({ op: "stop" });
            }),
        });
    });
  });
}
