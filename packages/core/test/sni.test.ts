import { mkdtemp, readFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { captureLogger } from '../../../test/support/logs.js';
import { generatePrivateKeyPem } from '../src/certificates.js';
import { CertManager, type StoredCertificate } from '../src/manager.js';
import { storageKeys } from '../src/storage/keys.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function serve(manager: CertManager) {
  const server = https.createServer(manager.httpsOptions(), (_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as { port: number }).port;
}

function handshake(port: number, servername: string, ca: string) {
  return new Promise<{ authorized: boolean; serial?: string }>((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca }, () => {
      resolve({
        authorized: socket.authorized,
        serial: socket.getPeerCertificate().serialNumber?.toLowerCase(),
      });
      socket.end();
    });
    socket.on('error', () => resolve({ authorized: false }));
  });
}

async function manager(storage: string, options: ConstructorParameters<typeof CertManager>[0] = {}) {
  const logger = captureLogger();
  const created = new CertManager({ storage, logger, ...options });
  cleanups.push(() => created.close());
  return Object.assign(created, { lines: logger });
}

describe('serving certificates at handshake time', () => {
  it('serves managed names that fell out of a full cache, reading them from storage', async () => {
    const storage = await mkdtemp(path.join(os.tmpdir(), 'autotls-sni-'));
    const names = ['a.localhost', 'b.localhost', 'c.localhost'];
    const small = await manager(storage, { cacheCapacity: 1 });
    await small.manage(names);
    await small.ready(names);
    const port = await serve(small);
    const root = await readFile(path.join(storage, 'pki/authorities/local/root.crt'), 'utf8');
    for (const name of [...names, ...names])
      expect((await handshake(port, name, root)).authorized).toBe(true);
    expect((await handshake(port, 'unmanaged.localhost', root)).authorized).toBe(false);
  });

  it('replaces a stored certificate whose key does not match, after one failed handshake', async () => {
    const storage = await mkdtemp(path.join(os.tmpdir(), 'autotls-sni-'));
    const first = await manager(storage);
    await first.manage(['app.localhost']);
    await first.ready(['app.localhost']);
    const key = storageKeys.certificate('local', 'app.localhost');
    const record = (await first.storage.get<StoredCertificate>(key))!;
    await first.storage.set(key, { ...record, privateKeyPem: generatePrivateKeyPem('ecdsa-p256') });

    const second = await manager(storage);
    await second.manage(['app.localhost']);
    const port = await serve(second);
    const root = await readFile(path.join(storage, 'pki/authorities/local/root.crt'), 'utf8');
    expect((await handshake(port, 'app.localhost', root)).authorized).toBe(false);
    expect(second.lines.find('unusable certificate; a new one will be obtained')[0]).toMatchObject({
      identifier: 'app.localhost',
    });
    await second.ready(['app.localhost']);
    const served = await handshake(port, 'app.localhost', root);
    expect(served.authorized).toBe(true);
    expect(served.serial).not.toBe(record.info?.serialNumber);
  });
});
