/**
 * Storage that fails on one entry: a read error other than "not found" is an error that names the path
 * (never "no certificate", which would order one), and an issued certificate that cannot be written is
 * served from memory, written once storage takes it, and not ordered again.
 */
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CertManager } from '@autotls/core';
import { describe, expect, it } from 'vitest';
import { waitFor } from './support/processes.js';
import { handshake, serve, tempDir } from './support/servers.js';
import { usePebble } from './support/use-pebble.js';

const pebble = usePebble();

const { newOrders, managerOn } = pebble;

function failuresOf(manager: CertManager, count: number): Promise<void> {
  return new Promise((resolve) => {
    let failures = 0;
    manager.on('cert_failed', () => ++failures === count && resolve());
  });
}

describe('storage failing on one entry', () => {
  it('takes a folder in place of a certificate file as an error naming the path, and orders nothing until it is gone', async () => {
    const storage = await tempDir();
    const { manager, logger } = managerOn(storage);
    const server = await serve(manager, pebble.httpPort);
    try {
      await manager.manage(['first.storage.test']);
      await manager.ready(['first.storage.test']);
      const certificates = path.join(storage, 'autotls', 'certificates');
      const [issuerFolder] = await readdir(certificates);
      const folder = path.join(certificates, issuerFolder as string, 'folder.storage.test');
      await mkdir(path.join(folder, 'inside'), { recursive: true });
      const ordersBefore = newOrders();

      const threeFailures = failuresOf(manager, 3);
      await manager.manage(['folder.storage.test']);
      await threeFailures;
      expect(newOrders()).toBe(ordersBefore);
      const readFailure = logger.find('reading certificate from storage failed')[0];
      expect(readFailure).toMatchObject({ identifier: 'folder.storage.test' });
      expect(String(readFailure?.error)).toContain(folder);
      expect(logger.find('will retry').some((line) => String(line.error).includes(folder))).toBe(true);

      await rm(folder, { recursive: true });
      await manager.ready(['folder.storage.test']);
      expect(newOrders()).toBe(ordersBefore + 1);
    } finally {
      await server.close();
      await manager.close();
    }
  });

  it('serves a certificate storage refused to write, writes it once storage takes it, and never orders it again', async () => {
    const storage = await tempDir();
    // `certificates` is a file: reading a record finds nothing, writing one fails.
    await mkdir(path.join(storage, 'autotls'), { recursive: true });
    const blocker = path.join(storage, 'autotls', 'certificates');
    await writeFile(blocker, 'not a folder');
    const { manager, logger } = managerOn(storage);
    const server = await serve(manager, pebble.httpPort);
    const name = 'unsaved.storage.test';
    const ordersBefore = newOrders();
    try {
      await manager.manage([name]);
      await manager.ready([name]);
      const root = await pebble.cas.pebbles.ca.rootPem();
      expect((await handshake(server.httpsPort, name, root)).authorized).toBe(true);
      expect(
        logger.find(
          'issued certificate could not be stored; serving it from memory and retrying the write',
        )[0],
      ).toMatchObject({ identifier: name });
      const serial = manager.getCertificate(name)?.serialNumber;

      await rm(blocker);
      await waitFor(
        () =>
          readdir(path.join(storage, 'autotls', 'certificates')).then(async ([issuer]) =>
            (await stat(path.join(storage, 'autotls', 'certificates', issuer as string, name))).isFile(),
          ),
        { timeoutMs: 8_000, description: 'the kept certificate written to storage' },
      );
      expect(newOrders()).toBe(ordersBefore + 1);

      const fresh = managerOn(storage);
      await fresh.manager.manage([name]);
      expect(fresh.manager.getCertificate(name)?.serialNumber).toBe(serial);
      await fresh.manager.close();
      expect(newOrders()).toBe(ordersBefore + 1);
    } finally {
      await server.close();
      await manager.close();
    }
  });
});
