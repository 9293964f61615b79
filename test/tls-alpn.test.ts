import https from 'node:https';
import { acme, CertManager } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StartedCAs, startCAs } from './support/index.js';
import { captureLogger } from './support/logs.js';
import { freePort } from './support/ports.js';
import { handshake, tempDir } from './support/servers.js';

let cas: StartedCAs<'ca'>;
let tlsPort: number;

beforeAll(async () => {
  tlsPort = await freePort();
  // Nothing listens on the HTTP-01 port: only TLS-ALPN-01 can succeed.
  cas = await startCAs({ names: ['ca'], httpPort: await freePort(), tlsPort });
});

afterAll(() => cas?.stopAll());

async function httpsServer(manager: CertManager) {
  const server = https.createServer(manager.httpsOptions(), (_req, res) => res.end('app'));
  manager.attach(server);
  await new Promise<void>((resolve) => server.listen(tlsPort, '127.0.0.1', resolve));
  return {
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('TLS-ALPN-01 on the HTTPS port', () => {
  it('answers the CA with the challenge certificate and serves the app on the same port', async () => {
    const { ca } = cas.pebbles;
    const logger = captureLogger();
    const manager = new CertManager({
      issuers: [acme({ directoryUrl: ca.directoryUrl, ca: ca.caPem, challenges: ['tls-alpn-01'] })],
      storage: await tempDir(),
      logger,
    });
    const server = await httpsServer(manager);
    try {
      await manager.manage(['alpn.example.test']);
      await manager.ready(['alpn.example.test']);
      expect(logger.find('served key authentication certificate')[0]).toMatchObject({
        identifier: 'alpn.example.test',
        challenge: 'tls-alpn-01',
        distributed: false,
      });
      const { authorized, cert } = await handshake(tlsPort, 'alpn.example.test', await ca.rootPem());
      expect(authorized).toBe(true);
      expect(cert.subjectaltname).toBe('DNS:alpn.example.test');
    } finally {
      await server.close();
      await manager.close();
    }
  });

  it('switches from HTTP-01 to TLS-ALPN-01 on the next order when the CA cannot connect for HTTP-01', async () => {
    const { ca } = cas.pebbles;
    const logger = captureLogger();
    const manager = new CertManager({
      issuers: [acme({ directoryUrl: ca.directoryUrl, ca: ca.caPem, orderRetryDelayMs: 10 })],
      storage: await tempDir(),
      logger,
    });
    let failedAttempts = 0;
    manager.on('cert_failed', () => failedAttempts++);
    const server = await httpsServer(manager);
    try {
      await manager.manage(['switch.example.test']);
      await manager.ready(['switch.example.test']);
      const types = logger.find('trying to solve challenge').map((line) => line.challenge_type);
      expect(types).toEqual(['http-01', 'tls-alpn-01']);
      expect(failedAttempts).toBe(0);
    } finally {
      await server.close();
      await manager.close();
    }
  });
});
