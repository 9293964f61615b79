import http from 'node:http';
import https from 'node:https';
import { acme, CertManager, silentLogger } from '@autotls/core';
import KeyvRedis from '@keyv/redis';
import { Keyv } from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StartedCAs, startCAs } from './support/index.js';
import { type CapturedLogger, captureLogger } from './support/logs.js';
import { freePort } from './support/ports.js';
import { type Redis, startRedis } from './support/redis.js';
import { handshake } from './support/servers.js';

let cas: StartedCAs<'ca'>;
let redis: Redis;
let httpPort: number;
let tlsPort: number;

beforeAll(async () => {
  [httpPort, tlsPort] = [await freePort(), await freePort()];
  [cas, redis] = await Promise.all([startCAs({ names: ['ca'], httpPort, tlsPort }), startRedis()]);
});

afterAll(async () => {
  await redis?.stop();
  await cas?.stopAll();
});

/** One instance of the app: a manager on the shared Redis storage, with its own HTTPS listener. */
async function instance(
  logger: CapturedLogger | typeof silentLogger = silentLogger,
  { challenges, port = 0 }: { challenges?: Array<'http-01' | 'tls-alpn-01'>; port?: number } = {},
) {
  const keyv = new Keyv({ store: new KeyvRedis(redis.url), namespace: 'autotls' });
  const { ca } = cas.pebbles;
  const manager = new CertManager({
    issuers: [acme({ directoryUrl: ca.directoryUrl, ca: ca.caPem, challenges })],
    storage: keyv,
    logger,
  });
  const secure = https.createServer(manager.httpsOptions(), (_req, res) => res.end('ok'));
  manager.attach(secure);
  await new Promise<void>((resolve) => secure.listen(port, '127.0.0.1', resolve));
  return {
    manager,
    handler: manager.httpHandler(),
    httpsPort: (secure.address() as { port: number }).port,
    async close() {
      secure.closeAllConnections();
      await new Promise((resolve) => secure.close(resolve));
      await manager.close();
      await keyv.disconnect();
    },
  };
}

/** The load balancer in front of the instances' plain-HTTP port: `pick` chooses who answers. */
async function balancer(pick: () => (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const server = http.createServer((req, res) => pick()(req, res));
  await new Promise<void>((resolve) => server.listen(httpPort, '127.0.0.1', resolve));
  return { close: () => new Promise((resolve) => server.close(resolve)) };
}

const newOrders = () => cas.pebbles.ca.requestLog().filter((line) => line.route.includes('order-plz')).length;

describe('a cluster of instances sharing Redis', () => {
  it('obtains one certificate for a name all instances manage at once, and every instance serves it', async () => {
    const [a, b] = await Promise.all([instance(), instance()]);
    let turn = 0;
    const lb = await balancer(() => (turn++ % 2 === 0 ? a.handler : b.handler));
    const name = 'shared.redis.test';
    const ordersBefore = newOrders();
    try {
      await Promise.all([a.manager.manage([name]), b.manager.manage([name])]);
      await Promise.all([a.manager.ready([name]), b.manager.ready([name])]);
      expect(newOrders()).toBe(ordersBefore + 1);
      expect(a.manager.getCertificate(name)?.serialNumber).toBe(b.manager.getCertificate(name)?.serialNumber);
      const root = await cas.pebbles.ca.rootPem();
      for (const port of [a.httpsPort, b.httpsPort])
        expect((await handshake(port, name, root)).authorized).toBe(true);
    } finally {
      await lb.close();
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('lets an instance that did not start the challenge answer it from storage (distributed: true)', async () => {
    const bLogger = captureLogger();
    const [a, b] = await Promise.all([instance(), instance(bLogger)]);
    const lb = await balancer(() => b.handler); // the CA's validation request always lands on b
    const name = 'only-a.redis.test';
    try {
      await a.manager.manage([name]);
      await a.manager.ready([name]);
      expect(bLogger.find('served key authentication')[0]).toMatchObject({
        identifier: name,
        challenge: 'http-01',
        distributed: true,
      });
    } finally {
      await lb.close();
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("answers another instance's TLS-ALPN-01 challenge on its own HTTPS port, from storage", async () => {
    const bLogger = captureLogger();
    // The CA's TLS-ALPN-01 connection always lands on b; only a has the challenge in memory.
    const [a, b] = await Promise.all([
      instance(silentLogger, { challenges: ['tls-alpn-01'] }),
      instance(bLogger, { port: tlsPort }),
    ]);
    const name = 'alpn-a.redis.test';
    try {
      await a.manager.manage([name]);
      await a.manager.ready([name]);
      expect(bLogger.find('served key authentication certificate')[0]).toMatchObject({
        identifier: name,
        challenge: 'tls-alpn-01',
        distributed: true,
      });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
