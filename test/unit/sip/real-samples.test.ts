import { describe, expect, it } from "vitest";
import { HeaderId, unquote } from "../../../src/sip/index.ts";
import { asset, realSamples } from "../../helpers/corpus.ts";
import { parseValid, request, response, unwrap } from "../../helpers/sip.ts";

describe("real-world captures", () => {
  for (const sample of realSamples()) {
    it(`accepts ${sample.file}`, () => {
      parseValid(sample.bytes);
    });
  }

  it("reads RFC 5626 outbound parameters from a folded Contact", () => {
    const contacts = unwrap(request(asset("real/rfc5626-register-outbound-folded.sip")).contacts());
    const c = contacts?.star === false ? contacts.list[0] : undefined;
    expect(unquote(c?.params.find("+sip.instance")?.value ?? "")).toMatch(/^<urn:uuid:/);
    expect(c?.params.find("reg-id")?.value).toBe("1");
  });

  it("reads ob, reg-id and +sip.instance from a pjsip REGISTER over TCP", () => {
    const msg = request(asset("real/register-outbound-instance-regid-ob.sip"));
    const contacts = unwrap(msg.contacts());
    const c = contacts?.star === false ? contacts.list[0] : undefined;
    expect(c?.uri).toMatch(/;ob$/);
    expect(c?.params.find("reg-id")?.value).toBe("1");
    expect(unwrap(msg.optionTags(HeaderId.Supported))).toEqual(expect.arrayContaining(["outbound", "path"]));
  });

  it("reads a comma-joined Path list after three proxies", () => {
    const msg = request(asset("real/rfc3327-register-path-four-via.sip"));
    expect(unwrap(msg.via()).length).toBe(4);
    expect(unwrap(msg.addresses(HeaderId.Path)).length).toBeGreaterThanOrEqual(2);
    expect(msg.contentLength).toBeUndefined();
  });

  it("keeps rport and received from a Cirpack 401", () => {
    const [top] = unwrap(response(asset("real/401-register-challenge-cirpack.sip")).via());
    expect(top?.received).toBeDefined();
    expect(top?.rport).toBeDefined();
  });

  it("splits a comma-joined Route written by Asterisk", () => {
    const routes = unwrap(request(asset("real/bye-asterisk-route.sip")).addresses(HeaderId.Route));
    expect(routes.length).toBe(2);
    expect(routes[0]?.header).toBe(routes[1]?.header);
  });

  it("reads the WSS Via of SIP.js with its .invalid host", () => {
    const [top] = unwrap(request(asset("real/ws-sipjs-invite-wss.sip")).via());
    expect(top?.transport).toBe("WSS");
    expect(top?.host).toMatch(/\.invalid$/);
  });
});
