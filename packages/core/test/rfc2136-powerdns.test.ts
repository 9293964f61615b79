import { afterAll, beforeAll, describe } from 'vitest';
import { type PowerDns, powerDnsInstalled, startPowerDns } from '../../../test/support/powerdns.js';
import { rfc2136 } from '../src/solvers/rfc2136.js';
import { runDnsProviderConformance } from './dns-provider-conformance.js';

const installed = powerDnsInstalled();

/** The same provider against PowerDNS Authoritative, set up as docs/dns-01.md says (TSIG-ALLOW-DNSUPDATE). */
describe.skipIf(!installed)(
  `rfc2136() on PowerDNS${installed ? '' : ' (skipped: pdns_server not installed)'}`,
  () => {
    let pdns: PowerDns;
    let records = 0;

    beforeAll(async () => {
      pdns = await startPowerDns('pdns.test');
    });

    afterAll(() => pdns?.stop());

    const provider = (keySecret = pdns.key.secret) =>
      rfc2136({ server: pdns.address, keyName: pdns.key.name, keySecret });

    runDnsProviderConformance('rfc2136() on PowerDNS', () => ({
      provider: provider(),
      recordName: () => `_acme-challenge.r${++records}.pdns.test`,
      served: async (name) => pdns.txt(name),
      nameservers: [pdns.address],
      // PowerDNS refuses a bad signature unsigned, with REFUSED and no TSIG error.
      broken: {
        provider: provider(Buffer.from('not the secret').toString('base64')),
        error: /failed with REFUSED \(.*PowerDNS: the key name or secret is wrong/,
      },
    }));
  },
);
