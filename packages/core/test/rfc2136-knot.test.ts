import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Knot, knotInstalled, startKnot } from '../../../test/support/knot.js';
import { rfc2136 } from '../src/solvers/rfc2136.js';
import { runDnsProviderConformance } from './dns-provider-conformance.js';

/** The same provider against Knot DNS, set up as docs/dns-01.md says (ACL: TXT at _acme-challenge names). */
describe.skipIf(!knotInstalled())(
  `rfc2136() on Knot DNS${knotInstalled() ? '' : ' (skipped: knotd not installed)'}`,
  () => {
    let knot: Knot;
    let records = 0;

    beforeAll(async () => {
      knot = await startKnot('knot.test', ['_acme-challenge']);
    });

    afterAll(() => knot?.stop());

    const provider = (keySecret = knot.key.secret) =>
      rfc2136({ server: knot.address, keyName: knot.key.name, keySecret });

    runDnsProviderConformance('rfc2136() on Knot DNS', () => ({
      provider: provider(),
      // Below _acme-challenge.knot.test, which the ACL allows (sub-or-equal).
      recordName: () => `r${++records}._acme-challenge.knot.test`,
      served: async (name) => knot.txt(name),
      nameservers: [knot.address],
      broken: {
        provider: provider(Buffer.from('not the secret').toString('base64')),
        error: /TSIG BADSIG: key name or secret wrong/,
      },
    }));

    it('is refused a name outside the ACL with the TSIG error Knot gives (NOTAUTH, BADKEY)', async () => {
      await expect(provider().present('_acme-challenge.other.knot.test', 'x'.repeat(43))).rejects.toThrow(
        /failed with NOTAUTH \(TSIG BADKEY: .*ACL denies/,
      );
    });
  },
);
