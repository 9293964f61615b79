import { afterAll, beforeAll } from 'vitest';
import { challtestsrvProvider } from '../../../test/support/dns-providers.js';
import { type ChallTestSrv, startChallTestSrv } from '../../../test/support/pebble.js';
import { parseServerAddress } from '../src/dns/exchange.js';
import { txtValues } from '../src/dns/lookup.js';
import { runDnsProviderConformance } from './dns-provider-conformance.js';

let challtestsrv: ChallTestSrv;
let records = 0;

beforeAll(async () => {
  challtestsrv = await startChallTestSrv();
});

afterAll(() => challtestsrv?.stop());

runDnsProviderConformance("challtestsrv (the test suite's provider)", () => ({
  provider: challtestsrvProvider(challtestsrv.managementUrl),
  recordName: () => `_acme-challenge.r${++records}.cts.test`,
  served: (name) => txtValues(parseServerAddress(challtestsrv.dnsAddress), name),
  nameservers: [challtestsrv.dnsAddress],
  broken: { provider: challtestsrvProvider('http://127.0.0.1:1'), error: /ECONNREFUSED/ },
}));
