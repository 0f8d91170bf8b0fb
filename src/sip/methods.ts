/**
 * The request methods in the IANA SIP registry that deployed stacks send:
 * RFC 3261 §7.1, 3262, 3265/6665, 3311, 3428, 3515, 3903, 6086.
 */
export const METHODS = [
  "INVITE",
  "ACK",
  "BYE",
  "CANCEL",
  "OPTIONS",
  "REGISTER",
  "PRACK",
  "SUBSCRIBE",
  "NOTIFY",
  "PUBLISH",
  "INFO",
  "REFER",
  "MESSAGE",
  "UPDATE",
] as const;

/** Via transports (RFC 3261 §20.42, RFC 4168, RFC 7118), upper-cased as a Via writes them. */
export const VIA_TRANSPORTS = ["UDP", "TCP", "TLS", "WS", "WSS", "SCTP"] as const;
