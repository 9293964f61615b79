import http from 'node:http';
import { CertManager, zeroSSL } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StartedCAs, startCAs } from './support/index.js';
import { captureLogger } from './support/logs.js';
import { freePort } from './support/ports.js';
import { handshake, serve, tempDir } from './support/servers.js';

let cas: StartedCAs<'zerossl'>;
let httpPort: number;
let eabEndpoint: http.Server;
const emailsAsked: string[] = [];

beforeAll(async () => {
  httpPort = await freePort();
  cas = await startCAs({ names: ['zerossl'], httpPort, eabFor: ['zerossl'] });
  const [kid, hmacKey] = Object.entries(cas.pebbles.zerossl.eab)[0]!;
  // Stands in for ZeroSSL's EAB endpoint, which hands out credentials for an email address.
  eabEndpoint = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const email = new URLSearchParams(body).get('email') ?? '';
      emailsAsked.push(email);
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify(email ? { success: true, eab_kid: kid, eab_hmac_key: hmacKey } : { success: false }),
      );
    });
  });
  await new Promise<void>((resolve) => eabEndpoint.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  eabEndpoint?.close();
  await cas?.stopAll();
});

describe('ZeroSSL with External Account Binding fetched by email', () => {
  it('gets EAB credentials for the email when the account is created, then issues', async () => {
    const { zerossl } = cas.pebbles;
    const eabUrl = `http://127.0.0.1:${(eabEndpoint.address() as { port: number }).port}/eab`;
    const manager = new CertManager({
      email: 'ops@example.test',
      issuers: [zeroSSL({ directoryUrl: zerossl.directoryUrl, ca: zerossl.caPem, eabUrl })],
      storage: await tempDir(),
      logger: captureLogger(),
    });
    const server = await serve(manager, httpPort);
    try {
      await manager.manage(['eab.zerossl.test', 'second.zerossl.test']);
      await manager.ready();
      expect(emailsAsked).toEqual(['ops@example.test']); // once, at account creation
      const root = await zerossl.rootPem();
      expect((await handshake(server.httpsPort, 'eab.zerossl.test', root)).authorized).toBe(true);
    } finally {
      await server.close();
      await manager.close();
    }
  });

  it('says clearly that ZeroSSL needs an email when there is none', async () => {
    const { zerossl } = cas.pebbles;
    const logger = captureLogger();
    const manager = new CertManager({
      issuers: [
        zeroSSL({ directoryUrl: zerossl.directoryUrl, ca: zerossl.caPem, eabUrl: 'http://127.0.0.1:9/' }),
      ],
      storage: await tempDir(),
      retry: { intervalsMs: [60_000], maxDurationMs: 1 },
      logger,
    });
    await manager.manage(['noemail.zerossl.test']);
    await expect(manager.ready()).rejects.toThrow(/ZeroSSL needs an email address/);
    await manager.close();
  });
});
