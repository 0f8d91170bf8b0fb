import { readFileSync } from "node:fs";
import { checkMessage, MessageEditor, parseMessage } from "./src/sip/index.ts";
const b = readFileSync("../shared/assets/real/invite-freeswitch-sdp.sip");
const stage = process.argv[2];
let sink = 0;
const t0 = performance.now(); const N = 500000;
for (let i = 0; i < N; i++) {
  const p = parseMessage(b); if (!p.ok) throw 1; const m = p.value;
  if (stage === "parse") { sink += m.headers.length; continue; }
  const c = checkMessage(m); if (!c.ok) throw 2;
  if (stage === "check") continue;
  const s = new MessageEditor(m).prependVia("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sipedge-0123456789").insertRecordRoute("<sip:127.0.0.1:5060;lr>").setMaxForwards(69).slices();
  sink += s.length;
}
console.log(stage, Math.round(N / ((performance.now() - t0) / 1000)));
