import { isIPv4 } from "node:net";
import { ipBytes } from "./address.ts";

const MAGIC_COOKIE = 0x2112a442;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const XOR_MAPPED_ADDRESS = 0x0020;
const HEADER = 20;

/**
 * The answer to a STUN Binding request (RFC 5389 §7.3) that a UA sends to
 * the SIP port as its keep-alive (RFC 5626 §4.4.2, §8): a success response
 * with the request's transaction id and the address it came from as
 * XOR-MAPPED-ADDRESS, so the UA also learns its NAT binding. Undefined for
 * anything that is not a well-formed RFC 5389 Binding request: no answer.
 */
export function stunBindingResponse(request: Buffer, address: string, port: number): Buffer | undefined {
  if (request.length < HEADER) return undefined;
  const length = request.readUInt16BE(2);
  if (
    request.readUInt16BE(0) !== BINDING_REQUEST ||
    request.readUInt32BE(4) !== MAGIC_COOKIE ||
    length % 4 !== 0 ||
    HEADER + length !== request.length
  ) {
    return undefined;
  }
  const transaction = request.subarray(8, HEADER);
  const v4 = isIPv4(address);
  const bytes = ipBytes(address);
  if (bytes === undefined) return undefined;
  const ip = v4 ? bytes.subarray(12) : bytes;
  // RFC 5389 §15.2: the port XORed with the cookie's top half, the address with the cookie (and, for IPv6, the transaction id).
  const mask = Buffer.concat([request.subarray(4, 8), transaction]);
  const xored = Buffer.from(ip.map((b, i) => b ^ (mask[i] as number)));
  const value = Buffer.alloc(4);
  value.writeUInt8(v4 ? 0x01 : 0x02, 1);
  value.writeUInt16BE(port ^ (MAGIC_COOKIE >>> 16), 2);
  const attribute = Buffer.alloc(4);
  attribute.writeUInt16BE(XOR_MAPPED_ADDRESS, 0);
  attribute.writeUInt16BE(4 + xored.length, 2);
  const header = Buffer.alloc(HEADER);
  header.writeUInt16BE(BINDING_SUCCESS, 0);
  header.writeUInt16BE(attribute.length + value.length + xored.length, 2);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  transaction.copy(header, 8);
  return Buffer.concat([header, attribute, value, xored]);
}
