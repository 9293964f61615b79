import { execFile } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import { acme, CertManager, silentLogger } from '@autotls/core';
import KeyvRedis from '@keyv/redis';
import { Keyv } from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StartedCAs, startCAs } from './support/index.js';
import { pause, waitUntil } from './support/lifecycle.js';
import { freePort } from './support/ports.js';
import { type Redis, startRedis } from './support/redis.js';

const cli = fileURLToPath(new URL('../packages/core/dist/cli/main.js', import.meta.url));

let cas: StartedCAs<'ca'>;
let redis: Redis;
let httpPort: number;

beforeAll(async () => {
  httpPort = await freePort();
  [cas, redis] = await Promise.all([startCAs({ names: ['ca'], httpPort }), startRedis()]);
});

afterAll(async () => {
  await redis?.stop();
  await cas?.stopAll();
});

/** One instance of the app on the shared Redis, looking for work every 200 ms. */
async function instance() {
  const keyv = new Keyv({ store: new KeyvRedis(redis.url), namespace: 'autotls' });
  const { ca } = cas.pebbles;
  const manager = new CertManager({
    issuers: [acme({ directoryUrl: ca.directoryUrl, ca: ca.caPem, challenges: ['http-01'] })],
    storage: keyv,
    logger: silentLogger,
    renewal: { checkIntervalMs: 200 },
  });
  const secure = https.createServer(manager.httpsOptions(), (_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
  return {
    manager,
    handler: manager.httpHandler(),
    async close() {
      secure.closeAllConnections();
      await new Promise((resolve) => secure.close(resolve));
      await manager.close();
      await keyv.disconnect();
    },
  };
}

const newOrders = () => cas.pebbles.ca.requestLog().filter((line) => line.route.includes('order-plz')).length;

describe('autotls renew against a cluster sharing Redis', () => {
  it('is honoured once: one new order, and every instance serves the new serial', async () => {
    const [a, b] = await Promise.all([instance(), instance()]);
    let turn = 0;
    const lb = http.createServer((req, res) => (turn++ % 2 === 0 ? a.handler : b.handler)(req, res));
    await new Promise<void>((resolve) => lb.listen(httpPort, '127.0.0.1', resolve));
    const name = 'renew.cluster.test';
    try {
      await Promise.all([a.manager.manage([name]), b.manager.manage([name])]);
      await Promise.all([a.manager.ready([name]), b.manager.ready([name])]);
      const before = a.manager.getCertificate(name)?.serialNumber;
      const ordersBefore = newOrders();
      const result = await new Promise<{ code: number; stderr: string }>((resolve) =>
        execFile(process.execPath, [cli, 'renew', name, '--storage', redis.url], (error, _stdout, stderr) =>
          resolve({ code: error ? 1 : 0, stderr }),
        ),
      );
      expect(result).toEqual({ code: 0, stderr: '' });
      const serials = () => [a, b].map((node) => node.manager.getCertificate(name)?.serialNumber);
      await waitUntil(
        () => serials().every((serial) => serial !== before),
        'both instances serve a new certificate',
      );
      expect(new Set(serials()).size).toBe(1);
      await pause(1_000); // five more passes on each instance: the request is spent
      expect(newOrders()).toBe(ordersBefore + 1);
    } finally {
      lb.closeAllConnections();
      await new Promise((resolve) => lb.close(resolve));
      await Promise.all([a.close(), b.close()]);
    }
  });
});
