/** @module One DNS provider suite, many providers: what DNS-01 needs from any `{ present, cleanup }`. */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseServerAddress } from '../src/dns/exchange.js';
import { silentLogger } from '../src/log.js';
import { DnsPropagationTimeoutError, waitForTxt } from '../src/solvers/dns-propagation.js';
import type { DnsProvider } from '../src/solvers/dns01.js';

export interface DnsProviderUnderTest {
  provider: DnsProvider;
  /** A record name no other test uses, in a zone the provider can write. */
  recordName(): string;
  /** The TXT values served at `name`, read without the provider (from the DNS server itself). */
  served(name: string): Promise<string[]>;
  /** `'host:port'` of the servers that serve the zone. */
  nameservers: string[];
  /** The provider set up wrong (bad credentials, unreachable), and what its error must say. */
  broken: { provider: DnsProvider; error: RegExp };
}

/** A DNS-01 value as the CA computes it: base64url of a SHA-256 digest, 43 characters. */
function challengeValue(): string {
  return createHash('sha256').update(randomBytes(16)).digest('base64url');
}

/** Registers the suite; `underTest()` is called inside each test (after the file's beforeAll started servers). */
export function runDnsProviderConformance(name: string, underTest: () => DnsProviderUnderTest): void {
  describe(`DNS provider conformance: ${name}`, () => {
    it('serves a presented value, and no longer after its cleanup', async () => {
      const { provider, recordName, served } = underTest();
      const record = recordName();
      const value = challengeValue();
      await provider.present(record, value);
      expect(await served(record)).toEqual([value]);
      await provider.cleanup(record, value);
      expect(await served(record)).toEqual([]);
    });

    it('holds two values at one name at once (a wildcard and its base name, or two orders)', async () => {
      const { provider, recordName, served } = underTest();
      const record = recordName();
      const [first, second] = [challengeValue(), challengeValue()];
      await provider.present(record, first);
      await provider.present(record, second);
      expect((await served(record)).sort()).toEqual([first, second].sort());
      await provider.cleanup(record, first);
      await provider.cleanup(record, second);
    });

    it('cleans up one value and leaves the other in place', async () => {
      const { provider, recordName, served } = underTest();
      const record = recordName();
      const [first, second] = [challengeValue(), challengeValue()];
      await provider.present(record, first);
      await provider.present(record, second);
      await provider.cleanup(record, first);
      expect(await served(record)).toEqual([second]);
      await provider.cleanup(record, second);
      expect(await served(record)).toEqual([]);
    });

    it('cleans up idempotently: twice, and a value never presented', async () => {
      const { provider, recordName, served } = underTest();
      const record = recordName();
      const [kept, gone] = [challengeValue(), challengeValue()];
      await provider.present(record, kept);
      await provider.present(record, gone);
      await provider.cleanup(record, gone);
      await provider.cleanup(record, gone);
      await provider.cleanup(record, challengeValue());
      await provider.cleanup(recordName(), challengeValue());
      expect(await served(record)).toEqual([kept]);
      await provider.cleanup(record, kept);
    });

    it('passes the propagation check once presented, and fails it naming the servers when not', async () => {
      const { provider, recordName, nameservers } = underTest();
      const record = recordName();
      const value = challengeValue();
      const servers = nameservers.map(parseServerAddress);
      await provider.present(record, value);
      await waitForTxt(record, value, servers, { logger: silentLogger, timeoutMs: 5_000 });
      const missing = waitForTxt(record, challengeValue(), servers, {
        logger: silentLogger,
        timeoutMs: 300,
        initialIntervalMs: 50,
      });
      await expect(missing).rejects.toBeInstanceOf(DnsPropagationTimeoutError);
      await expect(missing).rejects.toThrow(nameservers[0]);
      await provider.cleanup(record, value);
    });

    it('reports a failure as a rejected promise with an error that says what is wrong', async () => {
      const { broken, recordName } = underTest();
      await expect(broken.provider.present(recordName(), challengeValue())).rejects.toThrow(broken.error);
    });
  });
}
