import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bind, startBind } from '../../../test/support/bind.js';
import { CnameChainError } from '../src/dns/lookup.js';
import type { PresentedChallenge } from '../src/issuers/issuer.js';
import { silentLogger } from '../src/log.js';
import { DnsPropagationTimeoutError } from '../src/solvers/dns-propagation.js';
import { Dns01Solver, type DnsProvider } from '../src/solvers/dns01.js';
import { rfc2136 } from '../src/solvers/rfc2136.js';

let bind: Bind;
let provider: DnsProvider;

beforeAll(async () => {
  bind = await startBind({
    zones: [
      {
        name: 'zone.test',
        records: [
          '_acme-challenge.cn IN CNAME cn.delegated.test.',
          '_acme-challenge.two IN CNAME hop.zone.test.',
          'hop IN CNAME two.delegated.test.',
          '_acme-challenge.loop IN CNAME loop.zone.test.',
          'loop IN CNAME _acme-challenge.loop.zone.test.',
          '_acme-challenge.dangling IN CNAME dangling.nowhere.test.',
        ],
      },
      { name: 'delegated.test' },
    ],
  });
  provider = rfc2136({ server: bind.address, keyName: bind.key.name, keySecret: bind.key.secret });
});

afterAll(() => bind?.stop());

let tokens = 0;
function challenge(identifier: string): PresentedChallenge {
  tokens++;
  return {
    type: 'dns-01',
    identifier,
    token: `t${tokens}`,
    keyAuthorization: `value-${tokens}`.padEnd(43, '0'),
  };
}

const solver = (dnsProvider: DnsProvider = provider, timeoutMs = 5_000) =>
  new Dns01Solver(dnsProvider, {
    logger: silentLogger,
    propagation: { nameservers: [bind.address], timeoutMs, initialIntervalMs: 50 },
  });

describe('DNS-01 solver', () => {
  it('writes the TXT value at the end of a CNAME chain into a delegated zone, and cleans it up there', async () => {
    for (const [identifier, target] of [
      ['cn.zone.test', 'cn.delegated.test'],
      ['*.two.zone.test', 'two.delegated.test'],
    ] as const) {
      const presented = challenge(identifier);
      const dns01 = solver();
      await dns01.present(presented);
      expect(bind.txt(target)).toEqual([presented.keyAuthorization]);
      await dns01.cleanup(presented);
      expect(bind.txt(target)).toEqual([]);
    }
  });

  it('refuses a CNAME loop, showing the chain', async () => {
    const failure = solver().present(challenge('loop.zone.test'));
    await expect(failure).rejects.toBeInstanceOf(CnameChainError);
    await expect(failure).rejects.toThrow(
      'CNAME loop: _acme-challenge.loop.zone.test → loop.zone.test → _acme-challenge.loop.zone.test',
    );
  });

  it('refuses a CNAME into a zone that does not exist (dangling), before writing anything', async () => {
    await expect(solver().present(challenge('dangling.zone.test'))).rejects.toThrow(
      /ends at dangling.nowhere.test, which is in no zone .*\(a dangling CNAME\)/,
    );
  });

  it('answers only once a record the provider publishes late is served', async () => {
    const late: DnsProvider = {
      present: async (fqdn, value) => {
        void delay(700).then(() => provider.present(fqdn, value));
      },
      cleanup: (fqdn, value) => provider.cleanup(fqdn, value),
    };
    const presented = challenge('late.zone.test');
    const dns01 = solver(late);
    await dns01.present(presented);
    expect(bind.txt('_acme-challenge.late.zone.test')).toEqual([presented.keyAuthorization]);
    await dns01.cleanup(presented);
  });

  it('gives up after the timeout naming the servers, and takes down what the provider wrote', async () => {
    const wrongName: DnsProvider = {
      present: (fqdn, value) => provider.present(`misplaced.${fqdn}`, value),
      cleanup: (fqdn, value) => provider.cleanup(`misplaced.${fqdn}`, value),
    };
    const failure = solver(wrongName, 300).present(challenge('timeout.zone.test'));
    await expect(failure).rejects.toBeInstanceOf(DnsPropagationTimeoutError);
    await expect(failure).rejects.toThrow(`not visible at ${bind.address} after 0.3 s`);
    expect(bind.txt('misplaced._acme-challenge.timeout.zone.test')).toEqual([]);
  });

  it('stops waiting when the attempt is aborted (the manager closes), and takes the value down', async () => {
    const wrongName: DnsProvider = {
      present: (fqdn, value) => provider.present(`aborted.${fqdn}`, value),
      cleanup: (fqdn, value) => provider.cleanup(`aborted.${fqdn}`, value),
    };
    const stop = new AbortController();
    const presented = { ...challenge('abort.zone.test'), signal: stop.signal };
    const failure = solver(wrongName, 60_000).present(presented);
    setTimeout(() => stop.abort(new Error('manager closed')), 200);
    await expect(failure).rejects.toThrow('manager closed');
    expect(bind.txt('aborted._acme-challenge.abort.zone.test')).toEqual([]);
  });

  it('does not wait for a provider that confirms propagation itself', async () => {
    const confirming: DnsProvider = { ...writesNothing(), confirmsPropagation: true };
    const presented = challenge('confirmed.zone.test');
    await solver(confirming).present(presented);
    expect(bind.txt('_acme-challenge.confirmed.zone.test')).toEqual([]);
  });
});

/** A provider that never writes anything. */
function writesNothing(): DnsProvider {
  return { present: async () => {}, cleanup: async () => {} };
}
