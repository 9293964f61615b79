/**
 * A second ACME implementation besides Pebble: Caddy's `acme_server` (Smallstep's code), with its 12-hour
 * certificates. It validates on ports 80 and 443 of what the system resolver says, so the scenarios run in
 * a network + mount namespace this test makes, with its own /etc/hosts and /etc/resolv.conf bind-mounted
 * there (pointing at a challtestsrv on port 53 for DNS-01); the machine's files are never touched.
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import {
  acme,
  CertManager,
  type CertManagerOptions,
  type ChallengeType,
  type DnsProvider,
} from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CaddyAcme, startCaddyAcme } from './support/caddy-acme.js';
import { testClock } from './support/clock.js';
import { ageUntilRenewed, CHECK_INTERVAL_MS } from './support/lifecycle.js';
import { captureLogger } from './support/logs.js';
import {
  insideTestNamespace,
  type NamespaceRun,
  namespaceUnavailable,
  runInNamespace,
} from './support/netns.js';
import { type ChallTestSrv, startChallTestSrv } from './support/pebble.js';
import { commandExists, makeTempDir } from './support/processes.js';
import { handshake, tempDir } from './support/servers.js';

const HOUR = 3600_000;
/** What Caddy's ACME server issues (Smallstep's default). */
const CADDY_LIFETIME_MS = 12 * HOUR;

const NAMES = {
  http01: 'http.caddy.test',
  tlsAlpn01: 'alpn.caddy.test',
  dns01: 'dns.caddy.test',
  restart: 'restart.caddy.test',
  renewal: 'renew.caddy.test',
  pending: 'pending.caddy.test',
  forgottenBefore: 'before.forgotten.caddy.test',
  forgottenAfter: 'after.forgotten.caddy.test',
};

const SCENARIOS = {
  http01: 'issues by HTTP-01 a 12-hour certificate that verifies against Caddy’s root',
  tlsAlpn01: 'issues by TLS-ALPN-01 alone',
  dns01: 'issues by DNS-01 through the DNS provider',
  restart: 'serves the stored certificate after a restart with no new order',
  renewal: 'renews its 12-hour certificate with a third of the lifetime left and serves the new one',
  pending:
    'fails a challenge left pending with an error within seconds, with its problem, and the next order switches to TLS-ALPN-01',
  forgotten: 'registers again within the attempt when the CA has forgotten the account',
} as const;

if (!insideTestNamespace()) {
  const unavailable =
    namespaceUnavailable() ?? (commandExists('caddy') ? undefined : 'caddy is not installed');
  describe.skipIf(unavailable !== undefined)(
    `Caddy's ACME server, in a network namespace${unavailable ? ` (skipped: ${unavailable})` : ''}`,
    () => {
      let run: NamespaceRun;
      beforeAll(async () => {
        const dir = makeTempDir('autotls-caddy-ns-');
        const hosts = join(dir, 'hosts');
        const resolvConf = join(dir, 'resolv.conf');
        writeFileSync(
          hosts,
          [
            '127.0.0.1 localhost',
            '::1 localhost',
            ...Object.values(NAMES).map((name) => `127.0.0.1 ${name}`),
          ].join('\n'),
        );
        writeFileSync(resolvConf, 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
        run = await runInNamespace(import.meta.url, [
          'ip link set lo up',
          `mount --bind ${hosts} /etc/hosts`,
          `mount --bind ${resolvConf} /etc/resolv.conf`,
        ]);
      }, 150_000);

      it.each(Object.values(SCENARIOS))('%s', (title) => {
        expect(run.status(title), run.failures(title)).toBe('passed');
      });
    },
  );
} else {
  describe("Caddy's ACME server (acme_server)", () => {
    let caddy: CaddyAcme;
    let dns: ChallTestSrv;

    beforeAll(async () => {
      [caddy, dns] = await Promise.all([startCaddyAcme(), startChallTestSrv({ dnsPort: 53 })]);
    });

    afterAll(async () => {
      await Promise.all([caddy?.stop(), dns?.stop()]);
    });

    const issuer = (challenges?: ChallengeType[]) =>
      acme({
        directoryUrl: caddy.directoryUrl,
        ca: caddy.rootPem,
        orderRetryDelayMs: 10,
        ...(challenges ? { challenges } : {}),
      });

    const dnsProvider = (): DnsProvider => ({
      confirmsPropagation: true, // challtestsrv serves a record once its API call returns
      present: (fqdn, value) => dns.addTxt(fqdn, value),
      cleanup: (fqdn) => dns.clearTxt(fqdn),
    });

    /** A manager with its listeners where Caddy validates: HTTP on 127.0.0.1:80 (unless `http: false`), HTTPS on :443. */
    async function start(options: Partial<CertManagerOptions> & { http?: boolean } = {}) {
      const { http: listenHttp = true, ...rest } = options;
      const logger = captureLogger();
      const manager = new CertManager({
        issuers: [issuer()],
        storage: await tempDir(),
        logger,
        retry: { intervalsMs: [200] },
        ...rest,
      });
      const plain = http.createServer(manager.httpHandler());
      const secure = https.createServer(manager.httpsOptions(), (_req, res) => res.end('ok'));
      manager.attach(secure);
      if (listenHttp) await new Promise<void>((resolve) => plain.listen(80, '127.0.0.1', resolve));
      await new Promise<void>((resolve) => secure.listen(443, '127.0.0.1', resolve));
      return {
        manager,
        logger,
        verify: async (name: string) => (await handshake(443, name, caddy.rootPem)).authorized,
        async close() {
          for (const server of [plain, secure]) server.closeAllConnections();
          await Promise.all(
            [secure, ...(listenHttp ? [plain] : [])].map(
              (server) => new Promise((resolve) => server.close(resolve)),
            ),
          );
          await manager.close();
        },
      };
    }

    it(SCENARIOS.http01, async () => {
      const name = NAMES.http01;
      const { manager, logger, verify, close } = await start({ issuers: [issuer(['http-01'])] });
      try {
        await manager.manage([name]);
        await manager.ready([name]);
        expect(await verify(name)).toBe(true);
        const { notBefore = 0, notAfter = 0 } = manager.getCertificate(name) ?? {};
        expect(Math.abs(notAfter - notBefore - CADDY_LIFETIME_MS)).toBeLessThan(2 * 60_000);
        expect(logger.find('trying to solve challenge').map((line) => line.challenge_type)).toEqual([
          'http-01',
        ]);
      } finally {
        await close();
      }
    });

    it(SCENARIOS.tlsAlpn01, async () => {
      const name = NAMES.tlsAlpn01;
      const { manager, logger, verify, close } = await start({
        issuers: [issuer(['tls-alpn-01'])],
        challenges: { http01: false },
        http: false,
      });
      try {
        await manager.manage([name]);
        await manager.ready([name]);
        expect(await verify(name)).toBe(true);
        expect(logger.find('served key authentication certificate')[0]).toMatchObject({ identifier: name });
      } finally {
        await close();
      }
    });

    it(SCENARIOS.dns01, async () => {
      const name = NAMES.dns01;
      const { manager, logger, verify, close } = await start({
        issuers: [issuer(['dns-01'])],
        challenges: { http01: false, tlsAlpn01: false, dns01: dnsProvider() },
        http: false,
      });
      try {
        await manager.manage([name]);
        await manager.ready([name]);
        expect(await verify(name)).toBe(true);
        expect(logger.find('trying to solve challenge').map((line) => line.challenge_type)).toEqual([
          'dns-01',
        ]);
      } finally {
        await close();
      }
    });

    it(SCENARIOS.restart, async () => {
      const name = NAMES.restart;
      const storage = await tempDir();
      const first = await start({ storage });
      try {
        await first.manager.manage([name]);
        await first.manager.ready([name]);
      } finally {
        await first.close();
      }
      const orders = caddy.requests('new-order');
      const second = await start({ storage });
      try {
        await second.manager.manage([name]);
        await second.manager.ready([name]);
        expect(await second.verify(name)).toBe(true);
        expect(caddy.requests('new-order')).toBe(orders);
      } finally {
        await second.close();
      }
    });

    it(SCENARIOS.renewal, async () => {
      const name = NAMES.renewal;
      const clock = testClock();
      const { manager, verify, close } = await start({
        clock,
        renewal: { checkIntervalMs: CHECK_INTERVAL_MS },
      });
      try {
        await manager.manage([name]);
        await manager.ready([name]);
        const before = manager.getCertificate(name)?.serialNumber;
        const event = await ageUntilRenewed(manager, clock, 0.7 * CADDY_LIFETIME_MS);
        expect(event).toMatchObject({ identifier: name, reason: 'lifetime', old_serial: before });
        expect(manager.getCertificate(name)?.serialNumber).toBe(event.serial);
        expect(await verify(name)).toBe(true);
      } finally {
        await close();
      }
    });

    it(SCENARIOS.pending, async () => {
      const name = NAMES.pending;
      // Nothing listens on port 80: Caddy's HTTP-01 validation fails, and it leaves the challenge pending.
      const { manager, logger, verify, close } = await start({ http: false });
      let failedAttempts = 0;
      manager.on('cert_failed', () => failedAttempts++);
      try {
        const started = performance.now();
        await manager.manage([name]);
        await manager.ready([name]);
        expect(performance.now() - started).toBeLessThan(10_000);
        expect(logger.find('trying to solve challenge').map((line) => line.challenge_type)).toEqual([
          'http-01',
          'tls-alpn-01',
        ]);
        const problem = logger.find('validating authorization')[0]?.problem as { type?: string } | undefined;
        expect(problem?.type).toMatch(/^urn:ietf:params:acme:error:/);
        expect(failedAttempts).toBe(0);
        expect(await verify(name)).toBe(true);
      } finally {
        await close();
      }
    });

    it(SCENARIOS.forgotten, async () => {
      const { manager, logger, verify, close } = await start();
      let failedAttempts = 0;
      manager.on('cert_failed', () => failedAttempts++);
      try {
        await manager.manage([NAMES.forgottenBefore]);
        await manager.ready([NAMES.forgottenBefore]);
        await caddy.restart({ forgetAccounts: true });
        await manager.manage([NAMES.forgottenAfter]);
        await manager.ready([NAMES.forgottenAfter]);

        expect(failedAttempts).toBe(0);
        expect(logger.find('ACME account unknown to the CA; registering a new one')).toHaveLength(1);
        expect(logger.find('registered ACME account')).toHaveLength(2);
        expect(await verify(NAMES.forgottenAfter)).toBe(true);
      } finally {
        await close();
      }
    });
  });
}
