import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bind, startBind } from '../../../test/support/bind.js';
import { freePort } from '../../../test/support/ports.js';
import { parseServerAddress } from '../src/dns/exchange.js';
import { txtValues } from '../src/dns/lookup.js';
import { DnsUpdateError } from '../src/dns/update.js';
import { ConfigurationError } from '../src/errors.js';
import { type Rfc2136Options, rfc2136 } from '../src/solvers/rfc2136.js';
import { runDnsProviderConformance } from './dns-provider-conformance.js';

let bind: Bind;
let records = 0;

beforeAll(async () => {
  bind = await startBind({
    zones: [{ name: 'zone.test' }, { name: 'sub.zone.test' }],
    keys: [
      {},
      { name: 'sha384-key', algorithm: 'hmac-sha384' },
      { name: 'sha512-key', algorithm: 'hmac-sha512' },
      { name: 'no-grant', mayUpdate: false },
    ],
  });
});

afterAll(() => bind?.stop());

const nextRecord = (zone: string) => `_acme-challenge.r${++records}.${zone}`;

function bindProvider(overrides: Partial<Rfc2136Options> = {}) {
  return rfc2136({
    server: bind.address,
    keyName: bind.key.name,
    keySecret: bind.key.secret,
    keyAlgorithm: bind.key.algorithm,
    ...overrides,
  });
}

runDnsProviderConformance('rfc2136() on BIND 9', () => ({
  provider: bindProvider(),
  recordName: () => nextRecord('zone.test'),
  served: async (name) => bind.txt(name),
  nameservers: [bind.address],
  broken: {
    provider: bindProvider({ keySecret: Buffer.from('not the secret').toString('base64') }),
    error: /TSIG BADSIG: key name or secret wrong/,
  },
}));

describe('rfc2136()', () => {
  const value = 'x'.repeat(43);

  it('says the key name or secret is wrong when BIND does not know the key (NOTAUTH, BADKEY)', async () => {
    const failure = bindProvider({ keyName: 'unknown-key' }).present(nextRecord('zone.test'), value);
    await expect(failure).rejects.toThrow(
      /failed with NOTAUTH \(TSIG BADKEY: key name or secret wrong \(the server knows no such key/,
    );
    await expect(failure).rejects.toMatchObject({ rcodeName: 'NOTAUTH', tsigErrorName: 'BADKEY' });
  });

  it('says the signature does not verify for a wrong secret (NOTAUTH, BADSIG)', async () => {
    const wrong = Buffer.from('0123456789abcdef0123456789abcdef').toString('base64');
    const failure = bindProvider({ keySecret: wrong }).present(nextRecord('zone.test'), value);
    await expect(failure).rejects.toBeInstanceOf(DnsUpdateError);
    await expect(failure).rejects.toMatchObject({ rcodeName: 'NOTAUTH', tsigErrorName: 'BADSIG' });
  });

  it('names the update policy when the key may not write the record (REFUSED)', async () => {
    const key = bind.keys[3]!;
    const failure = bindProvider({ keyName: key.name, keySecret: key.secret }).present(
      nextRecord('zone.test'),
      value,
    );
    await expect(failure).rejects.toThrow(/failed with REFUSED \(the key may not change this record/);
  });

  it('signs with hmac-sha384 and hmac-sha512 keys', async () => {
    for (const key of [bind.keys[1]!, bind.keys[2]!]) {
      const provider = bindProvider({
        keyName: key.name,
        keySecret: key.secret,
        keyAlgorithm: key.algorithm,
      });
      const record = nextRecord('zone.test');
      await provider.present(record, value);
      expect(bind.txt(record)).toEqual([value]);
      await provider.cleanup(record, value);
      expect(bind.txt(record)).toEqual([]);
    }
  });

  it('refuses hmac-md5 and other unknown algorithms when it is made, before any request', () => {
    expect(() => bindProvider({ keyAlgorithm: 'hmac-md5' })).toThrow(ConfigurationError);
    expect(() => bindProvider({ keyAlgorithm: 'HMAC-MD5.SIG-ALG.REG.INT' })).toThrow(/hmac-md5 is broken/);
    expect(() => bindProvider({ keyAlgorithm: 'hmac-sha1' })).toThrow(/rfc2136.keyAlgorithm/);
    expect(() => bindProvider({ keySecret: 'not base64!' })).toThrow(/rfc2136.keySecret/);
    expect(() => bindProvider({ server: 'host:99999' })).toThrow(/rfc2136.server/);
  });

  it('finds the zone by SOA (a delegated sub-zone on the same server), or takes the one given', async () => {
    const inSub = nextRecord('sub.zone.test');
    await bindProvider().present(inSub, value);
    expect(bind.txt(inSub)).toEqual([value]);
    await bindProvider().cleanup(inSub, value);
    const given = nextRecord('zone.test');
    await bindProvider({ zone: 'zone.test.' }).present(given, value);
    expect(bind.txt(given)).toEqual([value]);
    await bindProvider({ zone: 'zone.test' }).cleanup(given, value);
    await expect(bindProvider({ zone: 'other.test' }).present(given, value)).rejects.toThrow(
      /not inside the zone other.test/,
    );
  });

  it('names the zone and RCODE when the server does not serve the zone given (NOTAUTH)', async () => {
    const failure = bindProvider({ zone: 'elsewhere.test' }).present('_acme-challenge.elsewhere.test', value);
    await expect(failure).rejects.toThrow(/zone elsewhere.test at 127.0.0.1:\d+ failed with NOTAUTH/);
  });

  it('reads an answer too large for UDP over TCP', async () => {
    const record = nextRecord('zone.test');
    const values = Array.from({ length: 20 }, (_, index) => `${index}`.padStart(43, 'v'));
    const provider = bindProvider();
    for (const one of values) await provider.present(record, one);
    expect((await txtValues(parseServerAddress(bind.address), record)).sort()).toEqual(values.sort());
    for (const one of values) await provider.cleanup(record, one);
  });

  it('does not take an unsigned NOERROR for success (a forged or misrouted answer)', async () => {
    const forger = createSocket('udp4');
    forger.on('message', (request, peer) => {
      // The request's header, turned into a NOERROR response with no TSIG record.
      const answer = Buffer.from(request.subarray(0, 12));
      answer.writeUInt16BE(0xa800, 2);
      answer.fill(0, 4, 12);
      forger.send(answer, peer.port, peer.address);
    });
    await new Promise<void>((resolve) => forger.bind(0, '127.0.0.1', resolve));
    try {
      const server = `127.0.0.1:${forger.address().port}`;
      const failure = bindProvider({ server, zone: 'zone.test' }).present(nextRecord('zone.test'), value);
      await expect(failure).rejects.toThrow('the server answered a signed request without a TSIG signature');
    } finally {
      forger.close();
    }
  });

  it('fails with a timeout naming the server when nothing answers', async () => {
    const silent = `127.0.0.1:${await freePort()}`;
    const failure = bindProvider({ server: silent, zone: 'zone.test', timeoutMs: 100 }).present(
      nextRecord('zone.test'),
      value,
    );
    await expect(failure).rejects.toThrow(`DNS server ${silent} did not answer`);
  });
});
