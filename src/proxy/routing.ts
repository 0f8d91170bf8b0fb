import { type Address, bareHost, HeaderId, isSipUri, type Located, parseUri, type SipRequest } from "../sip/index.ts";
import { type Flow, flowOwner } from "../transport/flow.ts";
import type { FlowTokens } from "./flow-token.ts";
import type { Dispatcher, ForeignRoutePolicy, RoutingRefusal, Sides, Target } from "./ports.ts";

/**
 * The routing policy: sipedge sends only where it was told to
 * (docs/architecture.md, "Routing policy"). One rule, decided here and
 * nowhere else:
 * - a client's request goes to a configured backend member: the one the
 *   dispatcher picks (out of dialog), or the one sipedge signed into its own
 *   Record-Route when the dialog was made (in dialog);
 * - a backend's request goes to the client flow a signed flow token names.
 * Never to an address a message merely names (Route, Request-URI, Via),
 * and never through DNS: an edge that relays where a stranger points is a
 * weapon against its own network.
 */

/** The request's Route values, and how many at the top name sipedge (RFC 3261 §16.4: they are popped). */
export interface OwnRoutes {
  readonly list: readonly Located<Address>[];
  readonly popped: number;
}

/** Where the policy sends a request. `remove`: how many Route values from the top go before it leaves. */
export type Decision =
  /** Out of dialog from a client: the dispatcher picks a backend. */
  | { readonly kind: "dispatch"; readonly remove: number }
  /** In dialog from a client: the backend our Record-Route names. */
  | { readonly kind: "backend"; readonly target: Target; readonly remove: number }
  /** From a backend: a client flow this worker owns. */
  | { readonly kind: "client"; readonly flow: Flow; readonly remove: number }
  /** From a backend: a client flow another worker owns (a hand-off). */
  | { readonly kind: "elsewhere"; readonly owner: number; readonly flowId: number }
  /** From a backend: the flow token is sound but its flow and its endpoint's are gone (RFC 5626 §5.3: 430). */
  | { readonly kind: "gone" }
  /** A token that does not verify: never a route into someone else's flow (403). */
  | { readonly kind: "forged" }
  | { readonly kind: "refuse"; readonly why: RoutingRefusal };

/** The answer each refusal earns (a request; an ACK is dropped). */
export const REFUSAL_RESPONSE: Readonly<Record<RoutingRefusal, { status: number; reason: string }>> = {
  foreign_route: { status: 403, reason: "Forbidden" },
  no_dialog_route: { status: 403, reason: "Forbidden" },
  unknown_backend: { status: 404, reason: "Not Found" },
  no_flow_token: { status: 404, reason: "Not Found" },
};

/** What the policy needs of the worker. */
export type RoutingSides = Pick<
  Sides,
  "isLocal" | "tokens" | "worker" | "connection" | "clientUdpFlow" | "currentFlow"
>;

const BACKEND_PARAM = /;bk=([A-Za-z0-9_-]+)/;
const FLOW_PARAM = /;fl=([A-Za-z0-9_-]+)/;

/** The policy of one IO worker. */
export class Router {
  readonly #sides: RoutingSides;
  readonly #members: Pick<Dispatcher, "member">;
  #foreign: ForeignRoutePolicy;

  constructor(sides: RoutingSides, members: Pick<Dispatcher, "member">, foreign: ForeignRoutePolicy) {
    this.#sides = sides;
    this.#members = members;
    this.#foreign = foreign;
  }

  /** SIGHUP. */
  reconfigure(foreign: ForeignRoutePolicy): void {
    this.#foreign = foreign;
  }

  /** The request's Route values, and how many at the top name sipedge. */
  ownRoutes(req: SipRequest): OwnRoutes {
    const routes = req.addresses(HeaderId.Route);
    const list = routes.ok ? routes.value : [];
    let popped = 0;
    while (popped < list.length && this.#namesUs((list[popped] as Located<Address>).value)) popped++;
    return { list, popped };
  }

  /**
   * A client's request. In dialog (a To tag) through our Record-Route: the
   * backend signed into it for this dialog (its Call-ID), else refused.
   * Otherwise the pool: our Route values are popped, a `bk` among them
   * counts for nothing (it is good inside its own dialog only); a Route
   * naming anyone else is refused or stripped.
   */
  fromClient(ours: OwnRoutes, inDialog: boolean, callId: string): Decision {
    const { list, popped } = ours;
    if (inDialog) {
      const signed = paramOf(list, popped, BACKEND_PARAM);
      if (signed !== undefined) {
        const name = this.#sides.tokens.verifyBackend(signed, callId);
        if (name === undefined) return FORGED;
        const target = this.#members.member(name);
        return target === undefined
          ? { kind: "refuse", why: "unknown_backend" }
          : { kind: "backend", target, remove: popped };
      }
      // Our Record-Route without the backend in it: not a dialog sipedge made (RFC 3261 §16.12.1.2).
      if (popped > 0) return { kind: "refuse", why: "no_dialog_route" };
    }
    if (popped === list.length) return { kind: "dispatch", remove: popped };
    return this.#foreign === "strip"
      ? { kind: "dispatch", remove: list.length }
      : { kind: "refuse", why: "foreign_route" };
  }

  /**
   * A backend's request: the client flow named by the flow token in the
   * first of our Route values that carries one (Record-Route or Path): that
   * flow while it lives; else the flow its endpoints re-registered over
   * (RFC 5626: the endpoint, not the socket); owned by another worker, a
   * hand-off. `pinned`: another worker already resolved it.
   */
  fromBackend(ours: OwnRoutes, pinned: number | undefined): Decision {
    const remove = ours.popped;
    let id = pinned;
    if (id === undefined) {
      const token = paramOf(ours.list, remove, FLOW_PARAM);
      if (token === undefined) return { kind: "refuse", why: "no_flow_token" };
      const verified = this.#sides.tokens.verify(token);
      if (verified === undefined) return FORGED;
      if (verified.kind === "udp") {
        // Any worker sends from the shared (reusePort) UDP socket: no hand-off.
        const udp = this.#sides.clientUdpFlow(verified.address, verified.port, verified.listener);
        return udp === undefined ? GONE : { kind: "client", flow: udp, remove };
      }
      // Issued before a restart: that flow ended with the process.
      if (!verified.current) return GONE;
      id = verified.flowId;
    }
    const self = this.#sides.worker;
    if (flowOwner(id) !== self) return { kind: "elsewhere", owner: flowOwner(id), flowId: id };
    const live = this.#sides.connection(id);
    if (live !== undefined && !live.closed) return { kind: "client", flow: live, remove };
    const now = pinned === undefined ? this.#sides.currentFlow(id) : undefined;
    if (now === undefined || now === id) return GONE;
    if (flowOwner(now) !== self) return { kind: "elsewhere", owner: flowOwner(now), flowId: now };
    const moved = this.#sides.connection(now);
    return moved !== undefined && !moved.closed ? { kind: "client", flow: moved, remove } : GONE;
  }

  #namesUs(a: Address): boolean {
    const uri = parseUri(a.uri);
    return uri.ok && isSipUri(uri.value) && this.#sides.isLocal(bareHost(uri.value.host), uri.value.port);
  }
}

const FORGED: Decision = { kind: "forged" };
const GONE: Decision = { kind: "gone" };

/** A parameter sipedge put in one of its own Route values (the first `popped`), if any carries it. */
function paramOf(list: readonly Located<Address>[], popped: number, param: RegExp): string | undefined {
  for (let i = 0; i < popped; i++) {
    const found = param.exec((list[i] as Located<Address>).value.uri)?.[1];
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The `bk` parameter for our backend-side Record-Route: the member the dialog with this Call-ID lives on. */
export function backendParam(tokens: FlowTokens, member: Target, callId: string): string {
  return `;bk=${tokens.issueBackend(member.name, callId)}`;
}
