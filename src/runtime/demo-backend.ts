import { buildResponse, newTag } from "../proxy/responses.ts";
import { HeaderId, parseMessage, type SipRequest } from "../sip/index.ts";
import type { Flow } from "../transport/flow.ts";
import { UdpEndpoint } from "../transport/udp.ts";

const SDP =
  "v=0\r\no=demo 1 1 IN IP4 127.0.0.1\r\ns=sipedge demo\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
const REMEMBERED = 1024;

/**
 * A tiny UAS for the built-in demo: answers INVITE with 180 then 200 (SDP,
 * Record-Route copied), BYE, OPTIONS, REGISTER and the rest with 200. It
 * lets a newcomer place a call through sipedge with nothing else running.
 */
export class DemoBackend {
  readonly name: string;
  readonly #endpoint: UdpEndpoint;
  /** Final responses by INVITE branch, to answer retransmissions the same way. */
  readonly #answered = new Map<string, Buffer>();

  private constructor(name: string, endpoint: UdpEndpoint) {
    this.name = name;
    this.#endpoint = endpoint;
  }

  static async start(name: string, address: string, port: number): Promise<DemoBackend> {
    let backend: DemoBackend | undefined;
    const endpoint = await UdpEndpoint.bind(address, port, (bytes, flow) => backend?.receive(bytes, flow));
    backend = new DemoBackend(name, endpoint);
    return backend;
  }

  get port(): number {
    return this.#endpoint.port;
  }

  receive(bytes: Buffer, flow: Flow): void {
    const parsed = parseMessage(bytes);
    if (!parsed.ok || parsed.value.kind !== "request" || parsed.value.method === "ACK") return;
    const req = parsed.value;
    const source = { address: flow.remoteAddress, port: flow.remotePort };
    const contact = `Contact: <sip:${this.name}@${this.#endpoint.address}:${this.#endpoint.port}>`;
    if (req.method !== "INVITE") {
      const headers = req.method === "REGISTER" ? registerContacts(req) : [contact];
      flow.send([buildResponse(req, { status: 200, reason: "OK", headers }, source)]);
      return;
    }
    const branch = topBranch(req);
    const known = this.#answered.get(branch);
    if (known !== undefined) {
      flow.send([known]);
      return;
    }
    const tag = newTag();
    const headers = [...recordRoutes(req), contact];
    flow.send([buildResponse(req, { status: 180, reason: "Ringing", headers, toTag: tag }, source)]);
    const ok = buildResponse(
      req,
      { status: 200, reason: "OK", headers, toTag: tag, body: { contentType: "application/sdp", text: SDP } },
      source,
    );
    flow.send([ok]);
    this.#answered.set(branch, ok);
    if (this.#answered.size > REMEMBERED) this.#answered.delete(this.#answered.keys().next().value as string);
  }

  close(): void {
    this.#endpoint.close();
  }
}

function topBranch(req: SipRequest): string {
  const vias = req.via();
  return vias.ok ? (vias.value[0]?.branch ?? "") : "";
}

/** RFC 3261 §12.1.1: the UAS copies Record-Route into its dialog-creating responses. */
function recordRoutes(req: SipRequest): string[] {
  const out: string[] = [];
  for (let i = req.indexOf(HeaderId.RecordRoute); i >= 0; i = req.indexOf(HeaderId.RecordRoute, i + 1)) {
    out.push(`Record-Route: ${req.headerValue(i)}`);
  }
  return out;
}

/** A registrar answers with the bindings it holds; the demo holds what was just sent. */
function registerContacts(req: SipRequest): string[] {
  const contacts = req.values("contact");
  return contacts.map((c) => `Contact: ${c}`);
}
