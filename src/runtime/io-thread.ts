import { getPriority } from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import { HealthTable, membersOf } from "../health/state.ts";
import { log } from "../log/log.ts";
import { FlowTokens } from "../proxy/flow-token.ts";
import { useFlowIdRange } from "../transport/flow.ts";
import { type Ask, HEARTBEAT_MS, post, type Reply, type ThreadInit, type ToWorker, unknownMessage } from "./channel.ts";
import { HandOffs } from "./handoff.ts";
import { niceThread, pinTo, threadId } from "./pin.ts";
import { IoWorker } from "./worker.ts";

/** Entry point of one IO worker thread: pin, bind with reusePort, beat, serve until told to stop. */
async function main(init: ThreadInit): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error("io-thread runs as a worker thread only");
  // This thread's own logger, set as the main thread's is (runtime/config-reload.ts folds in the command line).
  log.configure(init.config.log);
  log.tag({ worker: init.index });
  const pinned = init.cpu === undefined ? undefined : pinTo(init.cpu);
  // Under systemd the process starts at Nice=-10 for the health thread's sake; the data path runs at 0.
  if (getPriority() < 0) niceThread(0);
  useFlowIdRange(init.index);
  // Hand-offs that arrive before this worker is serving are dropped (their sender counted them out).
  let serving: IoWorker | undefined;
  const handOffs = new HandOffs(
    init.index,
    init.threads,
    init.handOffDepth,
    (h) => serving?.acceptHandOff(h),
    (b) => serving?.learnEndpoints(b.keys, b.flow, b.expiresMs),
  );
  for (const peer of init.peers) handOffs.connect(peer.index, peer.port);
  let worker: IoWorker;
  try {
    const table = new HealthTable(
      membersOf(init.config).map((m) => m.name),
      init.health,
    );
    worker = await IoWorker.start(init.config, true, table, {
      index: init.index,
      handOffs,
      backendPorts: new Int32Array(init.backendPorts),
      tokens: new FlowTokens(init.flowSecret, new Uint8Array(init.flowEpochs)),
      workers: init.threads,
      connectionCounts: init.connectionCounts,
      ticketKeys: init.ticketKeys,
    });
    serving = worker;
  } catch (e) {
    post(port, { type: "failed", index: init.index, message: (e as Error).message });
    return;
  }
  const beats = new Int32Array(init.heartbeat);
  const beat = setInterval(() => Atomics.add(beats, init.index, 1), HEARTBEAT_MS);
  port.on("message", (m: ToWorker) => {
    switch (m.type) {
      case "request": {
        const reply = answer(worker, init, m.ask);
        if (reply !== undefined) post(port, { type: "response", id: m.id, reply });
        return;
      }
      case "fault":
        throw new Error(`io worker ${init.index}: injected fault`);
      case "peer":
        handOffs.connect(m.index, m.port);
        return;
      case "ticketKeys":
        worker.rotateTicketKeys(m.keys);
        return;
      case "stop":
        // Keep beating while draining: a worker finishing its calls is not stalled.
        void worker.drain(init.config.io.grace).then(() => {
          clearInterval(beat);
          handOffs.close();
          port.close();
        });
        return;
      default:
        unknownMessage(`io worker ${init.index}`, m);
    }
  });
  post(port, {
    type: "ready",
    index: init.index,
    tid: threadId(),
    pinned,
    listeners: worker.listeners,
    backendPort: worker.backendPort,
  });
}

/** The worker's reply to a request from the supervisor (undefined: a request it does not know, logged). */
function answer(worker: IoWorker, init: ThreadInit, ask: Ask): Reply | undefined {
  switch (ask.type) {
    case "stats":
      return { of: "stats", stats: worker.stats(init.index) };
    case "reload": {
      let error: string | undefined;
      try {
        log.configure(ask.config.log);
        const names = membersOf(ask.config).map((b) => b.name);
        worker.reconfigure(ask.config, new HealthTable(names, init.health));
      } catch (e) {
        error = (e as Error).message;
      }
      return { of: "reload", error };
    }
    default:
      unknownMessage(`io worker ${init.index}`, ask);
      return undefined;
  }
}

void main(workerData as ThreadInit);
