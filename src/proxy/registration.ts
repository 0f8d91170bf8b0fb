import { type Address, findParam, type SipRequest, type SipResponse } from "../sip/index.ts";

/**
 * Registrations through sipedge (RFC 3261 §10, RFC 5626): which endpoints a
 * successful REGISTER binds to the flow it came over, and which REGISTERs
 * are refused before they go anywhere.
 *
 * An endpoint is keyed by its AoR with its `+sip.instance` and `reg-id`
 * (else its Contact URI): an instance id is the UA's own word, and without
 * the AoR another account could claim a victim's instance and receive its
 * calls. It is bound from what the registrar granted in its 2xx (the
 * registrar authenticated the request; the request alone proves nothing).
 */

/** Longest AoR, instance id or Contact URI kept in an endpoint key: real ones are under 200 bytes. */
const MAX_KEY_PART = 512;
/** RFC 3261 §25.1 delta-seconds, at most ten digits (RFC 3261 §20.19: 2^32-1). */
const DELTA_SECONDS = /^[0-9]{1,10}$/;

/** Endpoints bound for the same time. */
export interface Binding {
  readonly keys: readonly string[];
  /** Seconds the registrar granted. */
  readonly expires: number;
}

/**
 * Why a client's REGISTER is refused (a 400 reason phrase), or undefined:
 * an `expires` that is no delta-seconds would make a binding that never
 * ends, and over-long keys are memory a peer chooses.
 */
export function registerProblem(req: SipRequest): string | undefined {
  const contacts = req.contacts();
  if (!contacts.ok || contacts.value === undefined || contacts.value.star) return undefined;
  const to = req.to();
  if (to.ok && to.value.uri.length > MAX_KEY_PART) return "AoR Too Long";
  for (const c of contacts.value.list) {
    const expires = findParam(c.params, "expires");
    if (expires !== undefined && !DELTA_SECONDS.test(expires.value ?? "")) return "Bad Contact Expires";
    if (c.uri.length > MAX_KEY_PART || (findParam(c.params, "+sip.instance")?.value?.length ?? 0) > MAX_KEY_PART) {
      return "Contact Too Long";
    }
  }
  return undefined;
}

/**
 * The endpoints a 2xx to `req` binds: each Contact of the request that the
 * registrar lists back (RFC 3261 §10.3 step 8: the 2xx carries every
 * current binding with its granted expiry), for the time it granted.
 * Contacts it does not list, or lists with expiry 0, bind nothing.
 */
export function boundEndpoints(req: SipRequest, res: SipResponse): Binding[] {
  const asked = req.contacts();
  const granted = res.contacts();
  const to = req.to();
  if (!asked.ok || asked.value === undefined || asked.value.star || !to.ok) return [];
  if (!granted.ok || granted.value === undefined || granted.value.star) return [];
  const fallback = res.expires();
  const aor = to.value.uri;
  const byExpiry = new Map<number, string[]>();
  for (const c of asked.value.list) {
    const back = granted.value.list.find((g) => sameBinding(c, g));
    if (back === undefined) continue;
    const text = findParam(back.params, "expires")?.value;
    const expires =
      text !== undefined && DELTA_SECONDS.test(text) ? Number(text) : fallback.ok ? fallback.value : undefined;
    if (expires === undefined || expires === 0) continue;
    const key = endpointKey(aor, c);
    const keys = byExpiry.get(expires) ?? [];
    keys.push(key);
    byExpiry.set(expires, keys);
  }
  return [...byExpiry].map(([expires, keys]) => ({ keys, expires }));
}

/** RFC 5626 §6: the instance and reg-id name the endpoint; without them, the Contact URI does (RFC 3261 §10.3). */
function endpointKey(aor: string, c: Address): string {
  const instance = findParam(c.params, "+sip.instance")?.value;
  const regId = findParam(c.params, "reg-id")?.value;
  return instance !== undefined && regId !== undefined ? `${aor} ${instance} ${regId}` : `${aor} ${c.uri}`;
}

/**
 * The registrar's Contact for the one the UA sent: the same instance and
 * reg-id where the registrar lists them (RFC 5626 §6), else the same URI.
 */
function sameBinding(sent: Address, back: Address): boolean {
  const instance = findParam(back.params, "+sip.instance")?.value;
  if (instance === undefined) return back.uri === sent.uri;
  return (
    findParam(sent.params, "+sip.instance")?.value === instance &&
    findParam(back.params, "reg-id")?.value === findParam(sent.params, "reg-id")?.value
  );
}

/** A REGISTER whose Contact has a reg-id: the UA uses outbound (RFC 5626 §4.2.1). */
export function registersOutbound(req: SipRequest): boolean {
  const contacts = req.contacts();
  return (
    contacts.ok &&
    contacts.value?.star === false &&
    contacts.value.list.some((c) => findParam(c.params, "reg-id") !== undefined)
  );
}

/**
 * RFC 5626 §5.4: the Flow-Timer (seconds) sipedge adds to a registrar's 2xx
 * for an outbound UA, telling it how often to keep its flow alive, unless
 * the registrar told it; undefined: none to add.
 */
export function flowTimerFor(req: SipRequest, res: SipResponse, flowTimerMs: number): string | undefined {
  if (res.status < 200 || res.status >= 300 || res.values("flow-timer").length > 0 || !registersOutbound(req)) {
    return undefined;
  }
  return String(Math.round(flowTimerMs / 1000));
}
