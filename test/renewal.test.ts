import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';
import { acme, DEFAULT_RETRY_INTERVALS_MS, renewalRetryDelayMs } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testClock } from './support/clock.js';
import { recordEvents } from './support/events.js';
import {
  ageUntilRenewed,
  CERTIFICATE_LIFETIME_MS,
  CHECK_INTERVAL_MS,
  pause,
  renewingManager,
  type ShortLivedCA,
  startShortLivedCA,
  waitUntil,
} from './support/lifecycle.js';
import { captureLogger } from './support/logs.js';
import { handshake, serve, tempDir } from './support/servers.js';

/** Past two thirds of the lifetime: a third or less is left, so the certificate is due. */
const PAST_TWO_THIRDS_MS = 0.7 * CERTIFICATE_LIFETIME_MS;

let ca: ShortLivedCA;

beforeAll(async () => {
  ca = await startShortLivedCA();
});

afterAll(async () => {
  await ca?.stop();
});

const issuer = () => acme({ directoryUrl: ca.pebble.directoryUrl, ca: ca.pebble.caPem });
const newOrders = () => ca.pebble.requestLog().filter((line) => line.route.includes('order-plz')).length;
const serialOf = (cert: tls.PeerCertificate) => cert.serialNumber.toLowerCase();

/** A GET over a kept-alive connection: `reused` tells whether it rode on a connection opened earlier. */
function get(agent: https.Agent, port: number, name: string) {
  return new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
    const request = https.get(
      { host: '127.0.0.1', port, servername: name, headers: { host: name }, agent },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: request.reusedSocket }));
      },
    );
    request.on('error', reject);
  });
}

/** A manager on a clock of its own, with its HTTP-01 and HTTPS listeners. */
async function start() {
  const clock = testClock();
  const logger = captureLogger();
  const manager = await renewingManager({ issuers: [issuer()], clock, logger });
  return { clock, logger, events: recordEvents(manager), manager, server: await serve(manager, ca.httpPort) };
}

describe('renewal by the maintenance loop, against a real CA', () => {
  it('renews a certificate past two thirds of its lifetime and the running server serves it to the next handshake', async () => {
    const name = 'renew.example.test';
    const { clock, events, manager, server } = await start();
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.rootPem });
    try {
      await manager.manage([name]);
      await manager.ready([name]);
      const before = await handshake(server.httpsPort, name, ca.rootPem);
      expect(await get(agent, server.httpsPort, name)).toEqual({ status: 200, reused: false });
      await pause(3 * CHECK_INTERVAL_MS);
      expect(events.of('cert_obtaining', name).filter((obtaining) => obtaining.renewal)).toHaveLength(0);

      const ordersBefore = newOrders();
      const event = await ageUntilRenewed(manager, clock, PAST_TWO_THIRDS_MS);

      expect(event).toMatchObject({
        identifier: name,
        reason: 'lifetime',
        old_serial: serialOf(before.cert),
      });
      const after = await handshake(server.httpsPort, name, ca.rootPem);
      expect(after.authorized).toBe(true);
      expect(serialOf(after.cert)).toBe(event.serial);
      expect(serialOf(after.cert)).not.toBe(serialOf(before.cert));
      expect(manager.getCertificate(name)?.serialNumber).toBe(event.serial);
      // Same server, same kept-alive connection: nothing was restarted or dropped.
      expect(await get(agent, server.httpsPort, name)).toEqual({ status: 200, reused: true });
      expect(newOrders()).toBe(ordersBefore + 1);
      expect(events.of('cert_obtaining', name).at(-1)).toMatchObject({ renewal: true, reason: 'lifetime' });
    } finally {
      agent.destroy();
      await server.close();
      await manager.close();
    }
  });

  it('two managers on one storage renew with exactly one order, and both serve the new certificate', async () => {
    const name = 'pair.example.test';
    const storage = await tempDir();
    const clock = testClock();
    const make = () => renewingManager({ issuers: [issuer()], storage, clock });
    const [first, second] = [await make(), await make()];
    // One plain-HTTP listener answers the CA for both: challenges are written to the shared storage.
    const server = await serve(first, ca.httpPort);
    try {
      await first.manage([name]);
      await first.ready([name]);
      await second.manage([name]);
      await second.ready([name]);
      const original = first.getCertificate(name)?.serialNumber;
      expect(second.getCertificate(name)?.serialNumber).toBe(original);

      const ordersBefore = newOrders();
      const renewedBy: string[] = [];
      for (const [label, manager] of [
        ['first', first],
        ['second', second],
      ] as const) {
        manager.on('cert_renewed', () => {
          renewedBy.push(label);
          clock.offsetMs = 0;
        });
      }
      clock.offsetMs = PAST_TWO_THIRDS_MS; // Both are due at once; the name's lock lets one of them renew.
      await waitUntil(() => {
        const [a, b] = [first.getCertificate(name)?.serialNumber, second.getCertificate(name)?.serialNumber];
        return a !== original && a === b;
      }, 'both managers serve the renewed certificate');
      await pause(5 * CHECK_INTERVAL_MS);

      expect(newOrders()).toBe(ordersBefore + 1);
      expect(renewedBy).toHaveLength(1);
    } finally {
      await server.close();
      await Promise.all([first.close(), second.close()]);
    }
  });

  it('an instance that was not due picks the renewed certificate up from storage on its next pass', async () => {
    const name = 'pickup.example.test';
    const storage = await tempDir();
    const renewingClock = testClock();
    const renewing = await renewingManager({ issuers: [issuer()], storage, clock: renewingClock });
    const other = await renewingManager({ issuers: [issuer()], storage });
    const otherEvents = recordEvents(other);
    const server = await serve(renewing, ca.httpPort);
    const otherHttps = https.createServer(other.httpsOptions(), (_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => otherHttps.listen(0, '127.0.0.1', resolve));
    const otherPort = (otherHttps.address() as AddressInfo).port;
    try {
      await renewing.manage([name]);
      await renewing.ready([name]);
      await other.manage([name]);
      const original = serialOf((await handshake(otherPort, name, ca.rootPem)).cert);
      const obtaining: unknown[] = [];
      other.on('cert_obtaining', (event) => obtaining.push(event));

      const { serial } = await ageUntilRenewed(renewing, renewingClock, PAST_TWO_THIRDS_MS);
      await waitUntil(
        () => other.getCertificate(name)?.serialNumber === serial,
        'the other instance serves it',
      );

      const seen = await handshake(otherPort, name, ca.rootPem);
      expect(seen.authorized).toBe(true);
      expect(serialOf(seen.cert)).toBe(serial);
      expect(serial).not.toBe(original);
      expect(obtaining).toEqual([]);
      expect(otherEvents.of('cached_managed_cert', name)).toHaveLength(2); // at start, then the renewed one
    } finally {
      otherHttps.closeAllConnections();
      await new Promise((resolve) => otherHttps.close(resolve));
      await server.close();
      await Promise.all([renewing.close(), other.close()]);
    }
  });

  it('a failed renewal follows the backoff schedule, shortened by the time left, while the still-valid certificate keeps being served', async () => {
    const name = 'backoff.example.test';
    const clock = testClock();
    // Backoff waits pass instantly on the moved clock; the fifth one holds until the CA can validate again.
    const sleeps: number[] = [];
    const sleptAt: number[] = [];
    let openGate = () => {};
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    clock.sleep = async (ms, signal) => {
      signal?.throwIfAborted();
      sleeps.push(ms);
      sleptAt.push(clock.now());
      clock.offsetMs += ms;
      await (sleeps.length >= 4 ? gate : pause(10));
    };
    const manager = await renewingManager({ issuers: [issuer()], clock });
    const events = recordEvents(manager);
    // One listener whose answers switch: closing and reopening the port would let another test file take it.
    const answerChallenges = manager.httpHandler();
    let challengesBroken = false;
    const challenges = http.createServer((req, res) =>
      challengesBroken ? res.writeHead(404).end('not here') : answerChallenges(req, res),
    );
    const secure = https.createServer(manager.httpsOptions(), (_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
    const httpsPort = (secure.address() as AddressInfo).port;
    try {
      await new Promise<void>((resolve) => challenges.listen(ca.httpPort, '127.0.0.1', () => resolve()));
      await manager.manage([name]);
      await manager.ready([name]);
      const original = serialOf((await handshake(httpsPort, name, ca.rootPem)).cert);
      const { notBefore, notAfter } = manager.getCertificate(name) ?? { notBefore: 0, notAfter: 0 };
      const validity = { notBefore, notAfter };

      // Only the renewal's waits count: a first obtain that had to retry (a slow CA under load) slept too.
      sleeps.length = 0;
      sleptAt.length = 0;
      // The CA now gets a 404 for every challenge: each renewal attempt fails with `unauthorized`.
      challengesBroken = true;
      const retryingIn: number[] = [];
      manager.on('cert_failed', (event) => retryingIn.push(event.retrying_in));
      const renewed = ageUntilRenewed(manager, clock, PAST_TWO_THIRDS_MS, 30_000);
      await waitUntil(() => retryingIn.length === 4, 'four attempts failed');

      const meanwhile = await handshake(httpsPort, name, ca.rootPem);
      expect(meanwhile.authorized).toBe(true);
      expect(serialOf(meanwhile.cert)).toBe(original);
      expect(manager.getCertificate(name)?.serialNumber).toBe(original);

      challengesBroken = false;
      openGate();
      const { serial } = await renewed;

      // Caddy's schedule, each wait cut to a tenth of the time the 1-hour certificate had left (short-lived
      // certificates must not wait out long steps near expiry), never under a minute.
      const expected = DEFAULT_RETRY_INTERVALS_MS.slice(0, 4).map((ms, index) =>
        renewalRetryDelayMs(ms, validity, sleptAt[index] ?? 0),
      );
      for (const [index, ms] of sleeps.entries()) {
        // Within the few milliseconds between the failure and its sleep.
        expect(Math.abs(ms - (expected[index] ?? 0))).toBeLessThan(50);
      }
      expect(sleeps[0]).toBe(DEFAULT_RETRY_INTERVALS_MS[0]);
      expect(sleeps[3]).toBeLessThan(DEFAULT_RETRY_INTERVALS_MS[3] ?? 0);
      expect(retryingIn).toEqual(sleeps.map((ms) => ms / 1000));
      const renewalAttempts = events.of('cert_obtaining', name).filter((obtaining) => obtaining.renewal);
      expect(renewalAttempts.map((obtaining) => obtaining.attempt)).toEqual([1, 2, 3, 4, 5]);
      expect(serialOf((await handshake(httpsPort, name, ca.rootPem)).cert)).toBe(serial);
    } finally {
      openGate();
      secure.closeAllConnections();
      await new Promise((resolve) => secure.close(resolve));
      challenges.closeAllConnections();
      await new Promise((resolve) => challenges.close(resolve));
      await manager.close();
    }
  });

  it('renews an expired certificate at once and serves it until the new one arrives, with an error log', async () => {
    const name = 'expired.example.test';
    const { clock, logger, manager, server } = await start();
    try {
      await manager.manage([name]);
      await manager.ready([name]);
      const original = manager.getCertificate(name)?.serialNumber;
      const event = await ageUntilRenewed(manager, clock, CERTIFICATE_LIFETIME_MS + 60_000);

      expect(event).toMatchObject({ reason: 'expired', old_serial: original });
      const complaint = logger.find(
        'certificate has expired; serving it until a new one arrives, renewing now',
      );
      expect(complaint[0]).toMatchObject({ level: 'error', identifier: name, serial: original });
      expect(serialOf((await handshake(server.httpsPort, name, ca.rootPem)).cert)).toBe(event.serial);
    } finally {
      await server.close();
      await manager.close();
    }
  });
});
