import https from 'node:https';
import { acme, CertManager } from '@autotls/core';
import { describe, expect, it } from 'vitest';
import { recordEvents } from './support/events.js';
import { captureLogger } from './support/logs.js';
import { tempDir } from './support/servers.js';
import { testTls } from './support/tls.js';

describe('a CA that answers garbage', () => {
  it.each([
    ['HTML instead of JSON', 'text/html', '<html>502 Bad Gateway</html>'],
    ['truncated JSON', 'application/json', '{"newNonce": "https://'],
    ['JSON of the wrong shape', 'application/json', '[1, 2, 3]'],
  ])('%s: a clear failure on the retry schedule, never a crash', async (_case, contentType, body) => {
    const { certPem, keyPem, caPem } = await testTls();
    const server = https.createServer({ cert: certPem, key: keyPem }, (_req, res) => {
      res.writeHead(200, { 'content-type': contentType, 'replay-nonce': 'garbage' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const logger = captureLogger();
    const manager = new CertManager({
      issuers: [acme({ directoryUrl: `https://127.0.0.1:${port}/dir`, ca: caPem })],
      storage: await tempDir(),
      retry: { intervalsMs: [10], maxDurationMs: 50 },
      logger,
    });
    const events = recordEvents(manager);
    try {
      await manager.manage(['garbage.example.test']);
      await expect(manager.ready(['garbage.example.test'])).rejects.toThrow(
        /no issuer could provide a certificate/,
      );
      const failure = logger.find('could not get certificate from issuer')[0];
      expect(failure).toMatchObject({ identifier: 'garbage.example.test', issuer: `127.0.0.1-${port}-dir` });
      expect(String(failure?.error)).not.toBe('');
      expect(events.of('cert_giving_up', 'garbage.example.test')).toHaveLength(1);
    } finally {
      await manager.close();
      server.close();
    }
  });
});
