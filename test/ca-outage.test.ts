import { acme, CertManager } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, type StartedCAs, startCAs, startFaultProxy } from './support/index.js';
import { captureLogger } from './support/logs.js';
import { freePort } from './support/ports.js';
import { handshake, serve, tempDir } from './support/servers.js';

let cas: StartedCAs<'ca'>;
let proxy: FaultProxy;
let httpPort: number;

beforeAll(async () => {
  httpPort = await freePort();
  cas = await startCAs({ names: ['ca'], httpPort });
  // The outage is played by the proxy resetting every connection: a stopped process would free its port for
  // other test files to take. Pebble itself is restarted in the middle, so it forgets our account too.
  proxy = await startFaultProxy({ target: cas.pebbles.ca.origin });
});

afterAll(async () => {
  await proxy?.stop();
  await cas?.stopAll();
});

describe('a CA that is down for a while', () => {
  it('gets the certificate on the next scheduled attempt after it returns, without a tight loop or a crash', async () => {
    const { ca } = cas.pebbles;
    const logger = captureLogger();
    const manager = new CertManager({
      issuers: [acme({ directoryUrl: proxy.directoryUrl, ca: proxy.caPem })],
      storage: await tempDir(),
      retry: { intervalsMs: [400] },
      logger,
    });
    const server = await serve(manager, httpPort);
    try {
      // An account exists before the outage; the restarted CA will have forgotten it.
      await manager.manage(['before.outage.test']);
      await manager.ready(['before.outage.test']);

      await proxy.down('reset');
      let attempts = 0;
      manager.on('cert_obtaining', () => attempts++);
      const failedTwice = new Promise<void>((resolve) => {
        let failures = 0;
        manager.on('cert_failed', () => ++failures === 2 && resolve());
      });
      await manager.manage(['during.outage.test']);
      await failedTwice;
      const attemptsWhileDown = attempts;
      const connectionsWhileDown = proxy.droppedConnections;
      await ca.restart();
      await proxy.up();
      await manager.ready(['during.outage.test']);

      expect(attemptsWhileDown).toBeLessThanOrEqual(3);
      // A handful of connections per attempt, not a tight loop.
      expect(connectionsWhileDown).toBeLessThan(10 * attemptsWhileDown);
      expect(attempts).toBeLessThanOrEqual(attemptsWhileDown + 2);
      const failure = logger.find('could not get certificate from issuer')[0];
      expect((failure?.problem as { type?: string } | undefined)?.type).toBe(
        'urn:ietf:params:acme:error:connection',
      );
      expect(logger.find('ACME account unknown to the CA; registering a new one')).toHaveLength(1);
      const { authorized } = await handshake(server.httpsPort, 'during.outage.test', await ca.rootPem());
      expect(authorized).toBe(true);
    } finally {
      await server.close();
      await manager.close();
    }
  });
});
