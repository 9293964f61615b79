/** @module test/support/servers — a manager's plain-HTTP and HTTPS listeners on loopback, and a TLS probe. */
import { Resolver } from 'node:dns/promises';
import { mkdtemp } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { CertManager } from '@autotls/core';

export const tempDir = (prefix = 'autotls-test-') => mkdtemp(path.join(os.tmpdir(), prefix));

/** Starts `manager.httpHandler()` on `httpPort` (where Pebble validates) and an HTTPS server on a free port. */
export async function serve(manager: CertManager, httpPort: number) {
  const plain = http.createServer(manager.httpHandler());
  const secure = https.createServer(manager.httpsOptions(), (_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => plain.listen(httpPort, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
  return {
    httpsPort: (secure.address() as { port: number }).port,
    async close() {
      plain.closeAllConnections();
      secure.closeAllConnections();
      await Promise.all([new Promise((r) => plain.close(r)), new Promise((r) => secure.close(r))]);
    },
  };
}

/** Connects with SNI `servername`, trusting only `caPem`; resolves with the verdict and the peer certificate. */
export function handshake(port: number, servername: string, caPem: string) {
  return new Promise<{ authorized: boolean; error?: Error; cert: tls.PeerCertificate }>((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port, servername, ca: caPem, rejectUnauthorized: false },
      () => {
        const result = {
          authorized: socket.authorized,
          error: socket.authorizationError ?? undefined,
          cert: socket.getPeerCertificate(),
        };
        socket.end();
        resolve(result);
      },
    );
    socket.on('error', reject);
  });
}

/** A resolver that asks challtestsrv, like Pebble does. */
export function resolverFor(dnsAddress: string): Resolver {
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([dnsAddress]);
  return resolver;
}
