import { acme, CertManager, silentLogger } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StartedCAs, startCAs } from './support/index.js';
import { freePort } from './support/ports.js';
import { handshake, serve, tempDir } from './support/servers.js';

let cas: StartedCAs<'flaky'>;
let httpPort: number;

beforeAll(async () => {
  httpPort = await freePort();
  cas = await startCAs({ names: ['flaky'], httpPort, common: { nonceRejectPercent: 50 } });
});

afterAll(() => cas?.stopAll());

describe('a CA that rejects half of all nonces', () => {
  it('still issues 20 certificates out of 20, retrying bad nonces with fresh ones', async () => {
    const { flaky } = cas.pebbles;
    const names = Array.from({ length: 20 }, (_, i) => `n${i}.nonce.test`);
    const manager = new CertManager({
      issuers: [acme({ directoryUrl: flaky.directoryUrl, ca: flaky.caPem })],
      storage: await tempDir(),
      rateLimit: { orders: 100 },
      retry: { intervalsMs: [60_000] },
      logger: silentLogger,
    });
    let failures = 0;
    manager.on('cert_failed', () => failures++);
    const server = await serve(manager, httpPort);
    try {
      await manager.manage(names);
      await manager.ready(names);
      expect(failures).toBe(0);
      const root = await flaky.rootPem();
      for (const name of names) expect((await handshake(server.httpsPort, name, root)).authorized).toBe(true);
    } finally {
      await server.close();
      await manager.close();
    }
  });
});
