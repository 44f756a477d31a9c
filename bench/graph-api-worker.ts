import { startFakeGraphApi } from "../test/fakes/graph-api.server.js";

/** Child process of startGraphApiProcess(): serves the fake Graph API on loopback, answers counts over IPC. */
const graph = await startFakeGraphApi();
process.on("message", (m: { op: "accepted" | "stop" }) => {
  if (m.op === "accepted") process.send?.({ op: "accepted", count: graph.records.length });
  else void graph.stop().then(() => process.exit(0));
});
process.send?.({ op: "ready", url: graph.url, phoneNumberId: graph.phoneNumberId, accessToken: graph.accessToken });
