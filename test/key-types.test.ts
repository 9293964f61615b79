import { acme, CertManager, silentLogger } from '@autotls/core';
import { describe, expect, it } from 'vitest';
import { handshake, serve, tempDir } from './support/servers.js';
import { usePebble } from './support/use-pebble.js';

const pebble = usePebble();

describe('certificates for every key type, ordered with our own CSR', () => {
  it.each([
    ['ecdsa-p256', { asn1Curve: 'prime256v1' }],
    ['ecdsa-p384', { asn1Curve: 'secp384r1' }],
    ['rsa-2048', { bits: 2048 }],
  ] as const)(
    '%s: the CA accepts the CSR and the served certificate carries that key',
    async (keyType, key) => {
      const { ca } = pebble.cas.pebbles;
      const name = `${keyType}.keys.example.test`;
      const long = `${'a'.repeat(63)}.${'b'.repeat(10)}.${keyType}.keys.example.test`; // too long for a CN
      const manager = new CertManager({
        issuers: [acme({ directoryUrl: ca.directoryUrl, ca: ca.caPem })],
        storage: await tempDir(),
        keyType,
        logger: silentLogger,
      });
      const server = await serve(manager, pebble.httpPort);
      try {
        await manager.manage([name, long]);
        await manager.ready([name, long]);
        const root = await ca.rootPem();
        for (const served of [name, long]) {
          const { authorized, cert } = await handshake(server.httpsPort, served, root);
          expect(authorized).toBe(true);
          expect(cert.subjectaltname).toBe(`DNS:${served}`);
          expect(cert).toMatchObject(key);
        }
      } finally {
        await server.close();
        await manager.close();
      }
    },
  );
});
