import https from 'node:https';
import { acme, CertManager, type CertManagerEvents } from '@autotls/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from './support/fault-proxy.js';
import { nextEvent } from './support/lifecycle.js';
import { captureLogger } from './support/logs.js';
import { tempDir } from './support/servers.js';
import { testTls } from './support/tls.js';

type Failed = CertManagerEvents['cert_failed'][0];
/** Short, so the test is quick; the attempt's bound is "about one of these", whatever its length. */
const REQUEST_TIMEOUT_MS = 1_500;

let proxy: FaultProxy | undefined;
let manager: CertManager | undefined;

afterEach(async () => {
  await manager?.close();
  await proxy?.stop();
  manager = undefined;
  proxy = undefined;
});

function managerFor(directoryUrl: string, caPem: string) {
  const logger = captureLogger();
  return {
    logger,
    start: async () => {
      manager = new CertManager({
        issuers: [acme({ directoryUrl, ca: caPem, requestTimeoutMs: REQUEST_TIMEOUT_MS })],
        storage: await tempDir(),
        retry: { intervalsMs: [60_000] },
        logger,
      });
      return manager;
    },
  };
}

describe('one attempt against a CA that does not behave', () => {
  it('fails within about one request timeout when the CA accepts connections and never answers', async () => {
    // Nothing behind the proxy: in 'hang' mode it never forwards anything.
    proxy = await startFaultProxy({ target: 'https://127.0.0.1:9' });
    await proxy.down('hang');
    const { start } = managerFor(proxy.directoryUrl, proxy.caPem);
    const started = performance.now();
    const failed = nextEvent<Failed>(await start(), 'cert_failed');
    await manager?.manage(['hang.example.test']);
    const event = await failed;
    const elapsedMs = performance.now() - started;

    expect(elapsedMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS);
    expect(elapsedMs).toBeLessThan(REQUEST_TIMEOUT_MS * 1.5 + 500);
    // One hung request, not one per retried request or per order.
    expect(proxy.log.filter((entry) => entry.fault === 'hang')).toHaveLength(1);
    const message = String((event.error as Error).message);
    expect(message).toContain(`GET directory at ${proxy.directoryUrl}`);
    expect(message).toContain(`no answer within ${REQUEST_TIMEOUT_MS} ms`);
  });

  it('logs the HTTP status of an HTML error page, not a missing nonce', async () => {
    const { certPem, keyPem, caPem } = await testTls();
    let directoryUrl = '';
    const server = https.createServer({ cert: certPem, key: keyPem }, (req, res) => {
      if (req.url === '/dir') {
        const origin = directoryUrl.replace('/dir', '');
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(
          JSON.stringify({
            newNonce: `${origin}/nonce`,
            newAccount: `${origin}/account`,
            newOrder: `${origin}/order`,
          }),
        );
      }
      res
        .writeHead(500, { 'content-type': 'text/html' })
        .end('<html><h1>500 Internal Server Error</h1></html>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    directoryUrl = `https://127.0.0.1:${(server.address() as { port: number }).port}/dir`;
    try {
      const { start, logger } = managerFor(directoryUrl, caPem);
      const failed = nextEvent<Failed>(await start(), 'cert_failed');
      await manager?.manage(['html.example.test']);
      await failed;

      const line = logger.find('could not get certificate from issuer')[0];
      expect(line?.problem).toMatchObject({ status: 500 });
      expect(String(line?.error)).toMatch(/^HEAD newNonce at https:\/\/127\.0\.0\.1:\d+\/dir: HTTP 500 /);
      expect(String(line?.error)).toContain('(text/html)');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
