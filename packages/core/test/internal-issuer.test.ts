import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import * as x509 from '@peculiar/x509';
import { Keyv } from 'keyv';
import { afterEach, describe, expect, it } from 'vitest';
import { testClock } from '../../../test/support/clock.js';
import { readCertificateInfo, splitPemChain } from '../src/certificates.js';
import type { Clock } from '../src/clock.js';
import { systemClock } from '../src/clock.js';
import { CorruptLocalCAError, internal, rootCertificatePem } from '../src/issuers/internal.js';
import type { CertificateRequest, IssuerContext } from '../src/issuers/issuer.js';
import { type Logger, silentLogger } from '../src/log.js';
import { RateLimiters } from '../src/ratelimit.js';
import { storageKeys } from '../src/storage/keys.js';
import { MemoryLocker } from '../src/storage/lock-memory.js';
import { openStorage, Storage } from '../src/storage/storage.js';

const hourMs = 60 * 60 * 1000;

function memoryStorage(keyv = new Keyv({ namespace: 'autotls' })): Storage {
  return new Storage(keyv);
}

function contextFor(
  storage: Storage,
  clock: Clock = systemClock,
  logger: Logger = silentLogger,
): IssuerContext {
  return { storage, clock, logger, solvers: new Map(), rateLimiters: new RateLimiters({}, clock) };
}

function recordingLogger(): Logger & { infos: Array<{ fields: Record<string, unknown>; message: string }> } {
  const infos: Array<{ fields: Record<string, unknown>; message: string }> = [];
  const logger = {
    ...silentLogger,
    infos,
    info: (fields: Record<string, unknown>, message: string) => void infos.push({ fields, message }),
    child: () => logger,
  };
  return logger;
}

/** Serves the certificate on a real HTTPS server and reports how a client trusting only `ca` sees it. */
async function handshake(
  served: { certificatePem: string; privateKeyPem: string },
  client: { ca: string; servername?: string },
): Promise<{ authorized: boolean; error?: Error }> {
  const server = https.createServer({ cert: served.certificatePem, key: served.privateKeyPem }, (_, res) =>
    res.end('ok'),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ...client, rejectUnauthorized: false }, () => {
        resolve({ authorized: socket.authorized, error: socket.authorizationError });
        socket.end();
      });
      socket.on('error', reject);
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

/** The serial's DER INTEGER content bytes: Certificate → TBSCertificate → [0] version → INTEGER. */
function derSerialNumber(certificate: x509.X509Certificate): Buffer {
  const der = Buffer.from(certificate.rawData);
  let offset = 0;
  const header = () => {
    const lengthByte = der[offset + 1]!;
    const lengthOfLength = lengthByte & 0x80 ? lengthByte & 0x7f : 0;
    const length = lengthOfLength ? der.readUIntBE(offset + 2, lengthOfLength) : lengthByte;
    return { contentStart: offset + 2 + lengthOfLength, length };
  };
  offset = header().contentStart; // into Certificate
  offset = header().contentStart; // into TBSCertificate
  const version = header();
  offset = version.contentStart + version.length;
  const serial = header();
  return der.subarray(serial.contentStart, serial.contentStart + serial.length);
}

describe('internal issuer (local CA)', () => {
  const directories: string[] = [];
  afterEach(async () => {
    await Promise.all(
      directories.splice(0).map((directory) => rm(directory, { recursive: true, force: true })),
    );
  });

  it('issues a localhost certificate that node:tls trusts with only the stored root as CA', async () => {
    const storage = memoryStorage();
    const issuer = internal();
    const issued = await issuer.issue({ names: ['localhost'], keyType: 'ecdsa-p256' }, contextFor(storage));

    expect(issuer.key).toBe('local');
    expect(issuer.hasTestCA).toBe(false);
    expect(issued.ca).toBe('internal');
    expect(splitPemChain(issued.certificatePem)).toHaveLength(1);
    const rootPem = await rootCertificatePem(storage);
    expect(rootPem).toBeDefined();
    expect(await handshake(issued, { ca: rootPem!, servername: 'localhost' })).toEqual({
      authorized: true,
      error: null,
    });
    const stranger = await internal().issue(
      { names: ['localhost'], keyType: 'ecdsa-p256' },
      contextFor(memoryStorage()),
    );
    expect((await handshake(stranger, { ca: rootPem!, servername: 'localhost' })).authorized).toBe(false);
  });

  it('names exactly the requested names, with IP addresses as IP SANs', async () => {
    const names = ['localhost', '*.localhost', 'app.localhost', '127.0.0.1', '::1'];
    const issued = await internal().issue({ names, keyType: 'ecdsa-p256' }, contextFor(memoryStorage()));
    const leaf = new x509.X509Certificate(issued.certificatePem);
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension)!;

    expect(san.names.toJSON()).toEqual([
      { type: 'dns', value: 'localhost' },
      { type: 'dns', value: '*.localhost' },
      { type: 'dns', value: 'app.localhost' },
      { type: 'ip', value: '127.0.0.1' },
      { type: 'ip', value: '::1' },
    ]);
    expect(readCertificateInfo(issued.certificatePem).names).toHaveLength(names.length);
    expect(leaf.subject).toBe('CN=localhost');
  });

  it('serves 127.0.0.1 to a client that connects by IP address', async () => {
    const storage = memoryStorage();
    const issued = await internal().issue(
      { names: ['127.0.0.1'], keyType: 'ecdsa-p256' },
      contextFor(storage),
    );
    const rootPem = (await rootCertificatePem(storage))!;

    expect(await handshake(issued, { ca: rootPem })).toEqual({ authorized: true, error: null });
  });

  it('makes a leaf-only server certificate signed by a CA-only root', async () => {
    const storage = memoryStorage();
    const issued = await internal().issue({ names: ['localhost'], keyType: 'rsa-2048' }, contextFor(storage));
    const leaf = new x509.X509Certificate(issued.certificatePem);
    const root = new x509.X509Certificate((await rootCertificatePem(storage))!);

    expect(root.subject).toBe(`CN=autotls Local Authority - ${new Date().getUTCFullYear()} ECC Root`);
    expect(root.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: true, critical: true });
    expect(root.getExtension(x509.KeyUsagesExtension)).toMatchObject({
      usages: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
      critical: true,
    });
    expect(await root.verify({ signatureOnly: true })).toBe(true);

    expect(leaf.issuer).toBe(root.subject);
    expect(await leaf.verify({ publicKey: root.publicKey, signatureOnly: true })).toBe(true);
    expect(leaf.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: false, critical: true });
    expect(leaf.getExtension(x509.KeyUsagesExtension)?.usages).toBe(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    );
    expect(leaf.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([
      x509.ExtendedKeyUsage.serverAuth,
    ]);
    expect(leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(
      root.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
    );
    const serial = derSerialNumber(leaf);
    expect(serial.length).toBeGreaterThanOrEqual(15);
    expect(serial[0]! & 0x80).toBe(0);
  });

  it('lets issuers on one storage (as in a cluster) converge on the same root', async () => {
    const keyv = new Keyv({ namespace: 'autotls' });
    // Two Storage objects over one store behave like two processes: no shared memory, one shared root.
    const [first, second] = [contextFor(memoryStorage(keyv)), contextFor(memoryStorage(keyv))];
    const request: CertificateRequest = { names: ['localhost'], keyType: 'ecdsa-p256' };
    await Promise.all([internal().issue(request, first), internal().issue(request, second)]);

    const storedRoot = (await rootCertificatePem(first.storage))!;
    for (const context of [first, second]) {
      expect(await internal().rootCertificatePem(context)).toBe(storedRoot);
      const issued = await internal().issue(request, context);
      expect(await handshake(issued, { ca: storedRoot, servername: 'localhost' })).toMatchObject({
        authorized: true,
      });
    }
  });

  it('makes one root for issuers starting together under one lock: their first leaves already verify against it', async () => {
    const keyv = new Keyv({ namespace: 'autotls' });
    const locker = new MemoryLocker();
    const contexts = [1, 2, 3].map(() => ({ ...contextFor(memoryStorage(keyv)), locker }));
    const request: CertificateRequest = { names: ['localhost'], keyType: 'ecdsa-p256' };
    const leaves = await Promise.all(contexts.map((context) => internal().issue(request, context)));

    const storedRoot = (await rootCertificatePem(contexts[0]!.storage))!;
    for (const leaf of leaves) {
      expect(await handshake(leaf, { ca: storedRoot, servername: 'localhost' })).toMatchObject({
        authorized: true,
      });
    }
  });

  it('dates the leaf from the injected clock, backdated a minute, and never past the root', async () => {
    const now = Date.UTC(2031, 4, 6, 7, 0, 0);
    const clock = testClock({ startMs: now });
    const leafLifetimeMs = 3 * hourMs;
    const issued = await internal({ leafLifetimeMs }).issue(
      { names: ['localhost'], keyType: 'ecdsa-p256' },
      contextFor(memoryStorage(), clock),
    );
    expect(readCertificateInfo(issued.certificatePem)).toMatchObject({
      notBefore: now - 60_000,
      notAfter: now + leafLifetimeMs,
    });

    const shortLivedRoot = internal({ rootLifetimeMs: hourMs, rootCommonName: 'Test Root' });
    const capped = await shortLivedRoot.issue(
      { names: ['localhost'], keyType: 'ecdsa-p256' },
      contextFor(memoryStorage(), clock),
    );
    const info = readCertificateInfo(capped.certificatePem);
    expect(info).toMatchObject({ notAfter: now + hourMs, issuer: 'CN=Test Root' });
  });

  it('refuses a corrupt stored root and leaves it in place', async () => {
    const storage = memoryStorage();
    const corrupt = { certificatePem: 'not a certificate', privateKeyPem: 'not a key' };
    await storage.set(storageKeys.localCA(), corrupt);

    await expect(
      internal().issue({ names: ['localhost'], keyType: 'ecdsa-p256' }, contextFor(storage)),
    ).rejects.toThrow(CorruptLocalCAError);
    await expect(rootCertificatePem(storage)).rejects.toThrow(/delete it to have a new root created/);
    expect(await storage.get(storageKeys.localCA())).toEqual(corrupt);
  });

  it('writes the root to <dir>/pki/authorities/local/root.crt with the file store, and logs it once', async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'autotls-internal-'));
    directories.push(directory);
    const storage = openStorage(directory);
    const logger = recordingLogger();
    const issuer = internal();
    const context = contextFor(storage, systemClock, logger);
    await issuer.issue({ names: ['localhost'], keyType: 'ecdsa-p256' }, context);
    await issuer.issue({ names: ['app.localhost'], keyType: 'ecdsa-p256' }, context);

    const rootPath = path.join(directory, 'pki', 'authorities', 'local', 'root.crt');
    expect(await readFile(rootPath, 'utf8')).toBe(await issuer.rootCertificatePem(context));
    expect((await stat(rootPath)).mode & 0o777).toBe(0o644);
    expect(logger.infos).toEqual([
      {
        fields: { root_path: rootPath, root_common_name: expect.stringMatching(/^autotls Local Authority/) },
        message: 'local CA root ready: trust this file to avoid browser warnings',
      },
    ]);
    expect(await rootCertificatePem(openStorage(directory))).toBe(await readFile(rootPath, 'utf8'));
  });
});
