import http from 'node:http';
import { acme, CertManager, type OnDemandOptions } from '@autotls/core';
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

async function onDemandManager(limits: Partial<OnDemandOptions> = {}) {
  const { ca } = cas.pebbles;
  const logger = captureLogger();
  const manager = new CertManager({
    issuers: [acme({ directoryUrl: ca.directoryUrl, ca: ca.caPem })],
    storage: await tempDir(),
    onDemand: {
      ask: `http://127.0.0.1:${(askEndpoint.address() as { port: number }).port}/ask`,
      ...limits,
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

  it('lets a name past the new-name limit wait in line: 50 concurrent handshakes, one order, all served', async () => {
    const { manager, port, close } = await onDemandManager({ maxNewNames: 1, windowMs: 1_000 });
    const denied: unknown[] = [];
    manager.on('on_demand_denied', (event) => denied.push(event));
    try {
      const root = await cas.pebbles.ca.rootPem();
      expect((await handshake(port, 'first.allowed.test', root)).cert.subjectaltname).toBe(
        'DNS:first.allowed.test',
      );
      const ordersBefore = newOrders();
      const results = await Promise.all(
        Array.from({ length: 50 }, () => handshake(port, 'second.allowed.test', root)),
      );
      expect(results.every((result) => result.authorized)).toBe(true);
      expect(results.every((result) => result.cert.subjectaltname === 'DNS:second.allowed.test')).toBe(true);
      expect(newOrders()).toBe(ordersBefore + 1);
      expect(denied).toEqual([]);
    } finally {
      await close();
    }
  });

  it('keeps a waiting name in line after its handshake gave up, and serves it once issued', async () => {
    // The wait cap is shorter than the wait in line (and than an order): both first handshakes give up.
    const limits = { maxNewNames: 1, windowMs: 1_000, handshakeTimeoutMs: 50 };
    const { manager, port, close } = await onDemandManager(limits);
    try {
      const root = await cas.pebbles.ca.rootPem();
      await handshake(port, 'early.allowed.test', root).catch(() => {});
      const obtained = new Promise((resolve) =>
        manager.on('cert_obtained', (event) => event.identifier === 'late.allowed.test' && resolve(event)),
      );
      await expect(handshake(port, 'late.allowed.test', root)).rejects.toThrow();
      await obtained;
      expect((await handshake(port, 'late.allowed.test', root)).cert.subjectaltname).toBe(
        'DNS:late.allowed.test',
      );
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
