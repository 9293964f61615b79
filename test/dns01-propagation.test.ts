/**
 * The propagation check as users run it, with nothing configured: the zone and its name servers come from
 * the system's resolver (SOA, then NS and their addresses), and the TXT value must be served by each. A
 * primary BIND takes the update, a secondary serves it up to a second later, and Pebble asks the
 * secondary. Port 53 and the system resolver are needed, so the scenario runs in a network + mount
 * namespace of its own, with its own /etc/resolv.conf bind-mounted there.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { acme, CertManager, type CertManagerEvents, rfc2136 } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bind, startBind, startBindSecondary } from './support/bind.js';
import { captureLogger } from './support/logs.js';
import {
  insideTestNamespace,
  type NamespaceRun,
  namespaceUnavailable,
  runInNamespace,
} from './support/netns.js';
import { type Pebble, startPebble } from './support/pebble.js';
import { freePort } from './support/ports.js';
import { commandExists, makeTempDir, waitFor } from './support/processes.js';
import { handshake, serve, tempDir } from './support/servers.js';

const PRIMARY = '127.0.0.2';
const SECONDARY = '127.0.0.3';
const SCENARIO =
  'answers only once both name servers of the zone (found by NS lookup) serve the value; Pebble asks the secondary';

if (!insideTestNamespace()) {
  const unavailable =
    namespaceUnavailable() ?? (commandExists('named') ? undefined : 'BIND 9 is not installed');
  describe.skipIf(unavailable !== undefined)(
    `DNS-01 propagation, in a network namespace${unavailable ? ` (skipped: ${unavailable})` : ''}`,
    () => {
      let run: NamespaceRun;
      beforeAll(async () => {
        const resolvConf = join(makeTempDir('autotls-dns-ns-'), 'resolv.conf');
        writeFileSync(resolvConf, `nameserver ${PRIMARY}\noptions timeout:1 attempts:1\n`);
        run = await runInNamespace(import.meta.url, [
          'ip link set lo up',
          // BIND listens only on addresses an interface has; 127.0.0.2 and .3 are routed to lo, not on it.
          `ip addr add ${PRIMARY}/8 dev lo`,
          `ip addr add ${SECONDARY}/8 dev lo`,
          `mount --bind ${resolvConf} /etc/resolv.conf`,
        ]);
      }, 120_000);

      it(SCENARIO, () => {
        expect(run.status(SCENARIO), run.failures(SCENARIO)).toBe('passed');
      });
    },
  );
} else {
  describe('DNS-01 propagation to every authoritative server', () => {
    let primary: Bind;
    let secondary: Awaited<ReturnType<typeof startBindSecondary>>;
    let pebble: Pebble;
    let httpPort: number;

    beforeAll(async () => {
      httpPort = await freePort();
      primary = await startBind({
        host: PRIMARY,
        port: 53,
        zones: [{ name: 'ns.test' }],
        nameservers: { ns1: PRIMARY, ns2: SECONDARY },
      });
      secondary = await startBindSecondary(primary, ['ns.test'], { host: SECONDARY, port: 53 });
      pebble = await startPebble({ dnsServer: secondary.address, httpPort });
    });

    afterAll(async () => {
      await pebble?.stop();
      await Promise.all([secondary?.stop(), primary?.stop()]);
    });

    it(SCENARIO, async () => {
      const names = ['*.ns.test', 'ns.test'];
      const manager = new CertManager({
        issuers: [acme({ directoryUrl: pebble.directoryUrl, ca: pebble.caPem, ordersPerAttempt: 1 })],
        challenges: {
          http01: false,
          tlsAlpn01: false,
          dns01: rfc2136({ server: PRIMARY, keyName: primary.key.name, keySecret: primary.key.secret }),
          dnsPropagation: { initialIntervalMs: 50, maxIntervalMs: 200 },
        },
        storage: await tempDir(),
        logger: captureLogger(),
        retry: { intervalsMs: [200] },
      });
      const failures: CertManagerEvents['cert_failed'][0][] = [];
      manager.on('cert_failed', (failure) => failures.push(failure));
      const server = await serve(manager, httpPort);
      try {
        await manager.manage(names);
        await manager.ready(names);
        const root = await pebble.rootPem();
        for (const name of ['www.ns.test', 'ns.test']) {
          expect((await handshake(server.httpsPort, name, root)).authorized).toBe(true);
        }
        expect(failures).toEqual([]);
        expect(primary.txt('_acme-challenge.ns.test')).toEqual([]);
        await waitFor(() => secondary.txt('_acme-challenge.ns.test').length === 0, {
          description: 'the secondary to drop the TXT values',
        });
      } finally {
        await server.close();
        await manager.close();
      }
    });
  });
}
