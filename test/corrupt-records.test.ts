/**
 * Records that cannot be used as they are: a corrupt one is moved under `corrupt/` before a new
 * certificate replaces it, and a certificate and key stored in another shape are adopted, not re-ordered.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { handshake, serve, tempDir } from './support/servers.js';
import { usePebble } from './support/use-pebble.js';

const pebble = usePebble();

const { newOrders, managerOn } = pebble;

/** Obtains `name` into a fresh directory; resolves with the directory, the record's file and its value. */
async function storedCertificate(name: string) {
  const storage = await tempDir();
  const { manager } = managerOn(storage);
  const server = await serve(manager, pebble.httpPort);
  try {
    await manager.manage([name]);
    await manager.ready([name]);
  } finally {
    await server.close();
    await manager.close();
  }
  const certificates = path.join(storage, 'autotls', 'certificates');
  const [issuerFolder] = await readdir(certificates);
  const file = path.join(certificates, issuerFolder as string, name);
  const { value } = JSON.parse(await readFile(file, 'utf8')) as {
    value: { certificatePem: string; privateKeyPem: string; info: { serialNumber: string } };
  };
  return { storage, file, issuerFolder: issuerFolder as string, value };
}

describe('records that cannot be used as they are', () => {
  it('moves a corrupt record under corrupt/ before the new certificate replaces it, and says where', async () => {
    const name = 'corrupt.records.test';
    const { storage, file, issuerFolder } = await storedCertificate(name);
    const truncated = (await readFile(file, 'utf8')).slice(0, 200);
    await writeFile(file, truncated);
    const { manager, logger } = managerOn(storage);
    const server = await serve(manager, pebble.httpPort);
    const ordersBefore = newOrders();
    try {
      await manager.manage([name]);
      await manager.ready([name]);
      expect(newOrders()).toBe(ordersBefore + 1);
      const asideFolder = path.join(storage, 'autotls', 'corrupt', 'certificates', issuerFolder);
      const [aside, ...others] = await readdir(asideFolder);
      expect(others).toHaveLength(0);
      expect(aside).toMatch(new RegExp(`^${name.replaceAll('.', '\\.')}\\.\\d{4}-\\d\\d-\\d\\dt\\d\\d-`));
      const kept = JSON.parse(await readFile(path.join(asideFolder, aside as string), 'utf8'));
      expect(kept.value.raw).toBe(truncated);
      const moved = logger.lines.find((line) => line.moved_to !== undefined);
      expect(moved).toMatchObject({
        identifier: name,
        moved_to: `corrupt/certificates/${issuerFolder}/${aside}`,
      });
      // The new record is whole.
      expect(JSON.parse(await readFile(file, 'utf8')).value.certificatePem).toContain('BEGIN CERTIFICATE');
    } finally {
      await server.close();
      await manager.close();
    }
  });

  it.each([
    [
      'an object with other field names',
      (pems: { certificatePem: string; privateKeyPem: string }) =>
        JSON.stringify({ value: { cert: pems.certificatePem, key: pems.privateKeyPem } }),
    ],
    [
      'a PEM file holding the chain and the key',
      (pems: { certificatePem: string; privateKeyPem: string }) =>
        `${pems.certificatePem}${pems.privateKeyPem}`,
    ],
  ])('adopts a valid certificate and key stored as %s, with no order', async (_shape, write) => {
    const name = `shape${_shape.length}.records.test`;
    const { storage, file, value } = await storedCertificate(name);
    await writeFile(file, write(value));
    const { manager, logger } = managerOn(storage);
    const server = await serve(manager, pebble.httpPort);
    const ordersBefore = newOrders();
    try {
      await manager.manage([name]);
      await manager.ready([name]);
      expect(newOrders()).toBe(ordersBefore);
      expect(manager.getCertificate(name)?.serialNumber).toBe(value.info.serialNumber);
      const root = await pebble.cas.pebbles.ca.rootPem();
      expect((await handshake(server.httpsPort, name, root)).authorized).toBe(true);
      expect(logger.find('adopted a certificate and key stored in another shape')[0]).toMatchObject({
        identifier: name,
      });
    } finally {
      await server.close();
      await manager.close();
    }
  });
});
