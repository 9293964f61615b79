import http from 'node:http';
import { acme, CertManager } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StartedCAs, startCAs } from './support/index.js';
import { captureLogger } from './support/logs.js';
import { freePort } from './support/ports.js';
import { handshake, serve, tempDir } from './support/servers.js';

let cas: StartedCAs<'ca'>;
let httpPort: number;
let askEndpoint: http.Server;
const asked: string[] = [];

beforeAll(async () => {
  httpPort = await freePort();
  cas = await startCAs({ names: ['ca'], httpPort });
  // The operator's "may this name have a certificate?" endpoint: yes for *.allowed.test.
  askEndpoint = http.createServer((req, res) => {
    const domain = new URL(req.url ?? '/', 'http://x').searchParams.get('domain') ?? '';
    asked.push(domain);
    res.writeHead(domain.endsWith('.allowed.test') ? 200 : 403).end();
  });
  await new Promise<void>((resolve) => askEndpoint.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  askEndpoint?.close();
  await cas?.stopAll();
});

const newOrders = () => cas.pebbles.ca.requestLog().filter((line) => line.route.includes('order-plz')).length;

async function onDemandManager(maxNewNames = 10) {
  const { ca } = cas.pebbles;
  const logger = captureLogger();
  const manager = new CertManager({
    issuers: [acme({ directoryUrl: ca.directoryUrl, ca: ca.caPem })],
    storage: await tempDir(),
    onDemand: {
      ask: `http://127.0.0.1:${(askEndpoint.address() as { port: number }).port}/ask`,
      maxNewNames,
    },
    logger,
  });
  const server = await serve(manager, httpPort);
  return {
    manager,
    logger,
    port: server.httpsPort,
    close: async () => {
      await server.close();
      await manager.close();
    },
  };
}

describe('on-demand TLS', () => {
  it('issues a certificate during the first handshake of a name the ask endpoint allows', async () => {
    const { port, close } = await onDemandManager();
    try {
      const ordersBefore = newOrders();
      const root = await cas.pebbles.ca.rootPem();
      const results = await Promise.all(
        Array.from({ length: 5 }, () => handshake(port, 'shop.allowed.test', root)),
      );
      expect(results.every((result) => result.authorized)).toBe(true);
      expect(results.every((result) => result.cert.subjectaltname === 'DNS:shop.allowed.test')).toBe(true);
      expect(newOrders()).toBe(ordersBefore + 1); // five concurrent handshakes, one order
      expect(asked.filter((name) => name === 'shop.allowed.test')).toHaveLength(1);
    } finally {
      await close();
    }
  });

  it('refuses a name the ask endpoint denies, and remembers the answer', async () => {
    const { manager, port, close } = await onDemandManager();
    const denied: unknown[] = [];
    manager.on('on_demand_denied', (event) => denied.push(event));
    try {
      const ordersBefore = newOrders();
      const root = await cas.pebbles.ca.rootPem();
      for (let i = 0; i < 3; i++) {
        await expect(handshake(port, 'evil.other.test', root)).rejects.toThrow();
      }
      expect(newOrders()).toBe(ordersBefore);
      expect(asked.filter((name) => name === 'evil.other.test')).toHaveLength(1);
      expect(denied[0]).toEqual({ identifier: 'evil.other.test', reason: 'denied' });
    } finally {
      await close();
    }
  });

  it('admits at most maxNewNames new names per window, whatever the ask endpoint says', async () => {
    const { manager, port, close } = await onDemandManager(1);
    const denied: unknown[] = [];
    manager.on('on_demand_denied', (event) => denied.push(event));
    try {
      expect((await handshake(port, 'first.allowed.test', '')).cert.subjectaltname).toBe(
        'DNS:first.allowed.test',
      );
      await expect(handshake(port, 'second.allowed.test', '')).rejects.toThrow();
      expect(denied).toEqual([{ identifier: 'second.allowed.test', reason: 'limited' }]);
    } finally {
      await close();
    }
  });

  it('will not start without an ask', () => {
    expect(
      () => new CertManager({ storage: '/tmp/autotls-on-demand-unused', onDemand: {} as never }),
    ).toThrow(expect.objectContaining({ name: 'ConfigurationError', option: 'onDemand.ask' }));
  });
});
