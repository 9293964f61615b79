import { describe, expect, it } from 'vitest';
import { parseServerAddress } from '../src/dns/exchange.js';
import {
  decodeMessage,
  encodeMessage,
  MalformedMessageError,
  OPCODE,
  RR_CLASS,
  RR_TYPE,
  txtData,
} from '../src/dns/wire.js';

describe('DNS wire format', () => {
  it('reads back a message it wrote, names in canonical form', () => {
    const bytes = encodeMessage({
      id: 0x1234,
      opcode: OPCODE.UPDATE,
      questions: [{ name: 'Zone.Test.', type: RR_TYPE.SOA, class: RR_CLASS.IN }],
      authorities: [
        {
          name: '_acme-challenge.Zone.Test',
          type: RR_TYPE.TXT,
          class: RR_CLASS.NONE,
          ttl: 0,
          data: txtData('v'),
        },
      ],
    });
    const message = decodeMessage(bytes);
    expect(message).toMatchObject({ id: 0x1234, opcode: OPCODE.UPDATE, response: false, rcode: 0 });
    expect(message.questions).toEqual([{ name: 'zone.test', type: RR_TYPE.SOA, class: RR_CLASS.IN }]);
    expect(message.authorities[0]).toMatchObject({
      name: '_acme-challenge.zone.test',
      class: 254,
      texts: ['v'],
    });
  });

  it('splits a TXT value longer than 255 bytes into character-strings', () => {
    const value = 'a'.repeat(300);
    const data = txtData(value);
    expect([data[0], data[256]]).toEqual([255, 45]);
    expect(data.length).toBe(302);
  });

  it('refuses a name whose compression pointer loops, or a message cut short', () => {
    const header = Buffer.from([0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    const loop = Buffer.concat([header, Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    expect(() => decodeMessage(loop)).toThrow(MalformedMessageError);
    expect(() => decodeMessage(header.subarray(0, 8))).toThrow(MalformedMessageError);
    expect(() => decodeMessage(Buffer.concat([header, Buffer.from([5, 97])]))).toThrow(/cut short/);
  });

  it('refuses labels and names longer than DNS allows', () => {
    const encode = (name: string) =>
      encodeMessage({ id: 1, opcode: OPCODE.QUERY, questions: [{ name, type: 1, class: 1 }] });
    expect(() => encode(`${'a'.repeat(64)}.test`)).toThrow(/label longer than 63/);
    expect(() => encode(Array.from({ length: 5 }, () => 'a'.repeat(60)).join('.'))).toThrow(
      /longer than 255/,
    );
  });

  it("reads servers as 'host', 'host:port', '[v6]:port' and bare IPv6", () => {
    expect(parseServerAddress('ns1.example.com')).toEqual({ host: 'ns1.example.com', port: 53 });
    expect(parseServerAddress('127.0.0.1:5353')).toEqual({ host: '127.0.0.1', port: 5353 });
    expect(parseServerAddress('[2001:db8::1]:53')).toEqual({ host: '2001:db8::1', port: 53 });
    expect(parseServerAddress('2001:db8::1')).toEqual({ host: '2001:db8::1', port: 53 });
    expect(() => parseServerAddress('host:0')).toThrow(/no valid port/);
    expect(() => parseServerAddress('')).toThrow(/not host\[:port\]/);
  });
});
