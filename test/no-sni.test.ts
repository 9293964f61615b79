import tls from 'node:tls';
import { autoTls } from '@autotls/express';
import express from 'express';
import { beforeAll, describe, expect, it } from 'vitest';
import { rootCertificatePem } from '../packages/core/src/issuers/internal.js';
import { captureLogger } from './support/logs.js';
import { tempDir } from './support/servers.js';

/** A TLS handshake that sends no server name (what a client connecting by IP address does). */
function handshakeWithoutSni(host: string, port: number, ca: string) {
  return new Promise<{ authorized: boolean; subjectaltname?: string }>((resolve, reject) => {
    // An IP host makes Node send no SNI; `servername: ''` makes sure of it. `authorized` is then the chain's
    // verdict: which name the certificate is for, the test looks at itself.
    const checkServerIdentity = () => undefined;
    const options = { host, port, ca, servername: '', rejectUnauthorized: false, checkServerIdentity };
    const socket = tls.connect(options, () => {
      const result = {
        authorized: socket.authorized,
        subjectaltname: socket.getPeerCertificate().subjectaltname,
      };
      socket.end();
      resolve(result);
    });
    socket.on('error', reject);
  });
}

describe('handshakes without SNI', () => {
  let storage: string;
  let root: string;
  beforeAll(async () => {
    storage = await tempDir('autotls-no-sni-');
  });

  it('get the certificate of the managed IP address they connected to, on IPv4 and IPv6', async () => {
    const tlsMiddleware = autoTls({
      domains: ['localhost', '127.0.0.1', '::1'],
      storage,
      logger: captureLogger(),
    });
    const app = express().use(tlsMiddleware);
    const servers = await tlsMiddleware.listen(app, { httpPort: 0, httpsPort: 0, host: '::' });
    try {
      await tlsMiddleware.manager.ready();
      root = (await rootCertificatePem(tlsMiddleware.manager.storage)) as string;
      const port = (servers.https.address() as { port: number }).port;
      const v4 = await handshakeWithoutSni('127.0.0.1', port, root);
      expect(v4).toEqual({ authorized: true, subjectaltname: 'IP Address:127.0.0.1' });
      const v6 = await handshakeWithoutSni('::1', port, root);
      expect(v6).toEqual({ authorized: true, subjectaltname: 'IP Address:0:0:0:0:0:0:0:1' });
    } finally {
      await servers.close();
    }
  });

  it('get the defaultName certificate when no managed IP address matches', async () => {
    const tlsMiddleware = autoTls({
      domains: ['localhost'],
      defaultName: 'localhost',
      storage,
      logger: captureLogger(),
    });
    const app = express().use(tlsMiddleware);
    const servers = await tlsMiddleware.listen(app, { httpPort: 0, httpsPort: 0, host: '127.0.0.1' });
    try {
      await tlsMiddleware.manager.ready();
      root = (await rootCertificatePem(tlsMiddleware.manager.storage)) as string;
      const port = (servers.https.address() as { port: number }).port;
      expect(await handshakeWithoutSni('127.0.0.1', port, root)).toEqual({
        authorized: true,
        subjectaltname: 'DNS:localhost',
      });
    } finally {
      await servers.close();
    }
  });
});
