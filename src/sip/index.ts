// The SIP codec: byte buffers in, offsets and decoded values out. No IO.
export type { Address } from "./address.ts";
export { type OptionsProbe, optionsRequest } from "./build.ts";
export { checkMessage } from "./check.ts";
export { describeMessage } from "./describe.ts";
export { MessageEditor, viaWithSource } from "./editor.ts";
export { type Disposition, dispositionOf, type SipError, type SipErrorCode } from "./errors.ts";
export { classifyDatagram, type Frame, type FramerOptions, StreamFramer } from "./framer.ts";
export { CANONICAL_NAME, HeaderId, headerIdOfName } from "./headers.ts";
export type { Contacts, Located, SipMessage, SipRequest, SipResponse } from "./message.ts";
export { METHODS } from "./methods.ts";
export { findParam, type Param, type Params } from "./params.ts";
export { type ParseOptions, parseMessage } from "./parser.ts";
export { err, ok, type Result } from "./result.ts";
export type { CSeq } from "./scalars.ts";
export { detached, unquote } from "./text.ts";
export { bareHost, isSipUri, parseUri, type SipUri, type TelUri, type Uri, uriHost } from "./uri.ts";
export { MAGIC_COOKIE, type Via } from "./via.ts";
