/** @module Caddy's "tls internal": a local root CA kept in storage that signs short-lived leaf certificates. */
import {
  createPrivateKey,
  createPublicKey,
  X509Certificate as NodeX509Certificate,
  randomBytes,
  type webcrypto,
} from 'node:crypto';
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { generatePrivateKeyPem } from '../certificates.js';
import { lockNames, storageKeys } from '../storage/keys.js';
import { CorruptEntryError, type Storage } from '../storage/storage.js';
import type { CertificateRequest, IssuedCertificate, Issuer, IssuerContext } from './issuer.js';

/** Caddy's leaf lifetime: short enough that a leaked development certificate never needs revoking. */
const defaultLeafLifetimeMs = 12 * 60 * 60 * 1000;
/** Long, because a user trusts the root by hand, once; Caddy's lasts about 10 years too. */
const defaultRootLifetimeMs = 3650 * 24 * 60 * 60 * 1000;
/** Backdating notBefore keeps a certificate valid on machines whose clock runs a little behind. */
const clockSkewMs = 60 * 1000;
/** X.520's upper bound for a common name; longer names live in the SAN only. */
const maxCommonNameLength = 64;
const rootAlgorithm = { name: 'ECDSA', namedCurve: 'P-256' };

export interface InternalIssuerOptions {
  /** Leaf lifetime; default 12 hours. Never extends past the root's expiry. */
  leafLifetimeMs?: number;
  /** Lifetime of a newly created root; default 10 years. */
  rootLifetimeMs?: number;
  /** Common name of a newly created root; default `autotls Local Authority - <year> ECC Root`. */
  rootCommonName?: string;
}

/** The root as stored under `storageKeys.localCA()`. */
export interface LocalCARecord {
  certificatePem: string;
  privateKeyPem: string;
}

export interface InternalIssuer extends Issuer {
  /** The root's PEM (created first if storage has none): trust it to avoid browser warnings. */
  rootCertificatePem(context: RootContext): Promise<string>;
}

type RootContext = Pick<IssuerContext, 'storage' | 'logger' | 'clock' | 'locker'>;

interface LoadedRoot {
  certificatePem: string;
  certificate: x509.X509Certificate;
  signingKey: webcrypto.CryptoKey;
}

/** The stored root cannot be used. It is never replaced automatically: the user may have trusted it. */
export class CorruptLocalCAError extends Error {
  constructor(cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      `the local CA root in storage ("${storageKeys.localCA()}") is unusable (${reason}); ` +
        'restore it, or delete it to have a new root created (which must then be trusted again)',
      { cause },
    );
    this.name = 'CorruptLocalCAError';
  }
}

/**
 * Parsed roots by storage. Storage is still read on every issuance (cheap next to signing), so an
 * instance that lost a creation race to another one follows the stored root from its next certificate.
 */
const parsedRoots = new WeakMap<Storage, LoadedRoot>();
/** Concurrent loads on one storage share one read (and at most one creation) in this process. */
const pendingLoads = new WeakMap<Storage, Promise<LoadedRoot>>();

/**
 * The local CA issuer: signs certificates for names no public CA will (`localhost`, `*.localhost`,
 * loopback IPs) with a root created on first use and kept in storage, so every instance shares it.
 * The chain it returns is the leaf alone; clients must trust the root, which is never sent.
 *
 * @example
 * const local = internal({ leafLifetimeMs: 60 * 60 * 1000 });
 * const manager = new CertManager({ domains: ['localhost'], issuers: [local], storage: directory });
 * await manager.manage(['localhost']);
 * // Trust <directory>/pki/authorities/local/root.crt once (OS or browser), or read the PEM:
 * const rootPem = await rootCertificatePem(openStorage(directory));
 */
export function internal(options: InternalIssuerOptions = {}): InternalIssuer {
  const leafLifetimeMs = options.leafLifetimeMs ?? defaultLeafLifetimeMs;
  const rootLifetimeMs = options.rootLifetimeMs ?? defaultRootLifetimeMs;
  if (!(leafLifetimeMs > 0 && rootLifetimeMs > 0)) {
    throw new RangeError('certificate lifetimes must be positive');
  }

  const rootFor = (context: RootContext): Promise<LoadedRoot> => {
    let pending = pendingLoads.get(context.storage);
    if (!pending) {
      pending = loadRoot(context, rootLifetimeMs, options.rootCommonName).finally(() =>
        pendingLoads.delete(context.storage),
      );
      pendingLoads.set(context.storage, pending);
    }
    return pending;
  };

  return {
    key: 'local',
    hasTestCA: false,
    async issue(request: CertificateRequest, context: IssuerContext): Promise<IssuedCertificate> {
      const root = await rootFor(context);
      return { ...(await signLeaf(root, request, context.clock.now(), leafLifetimeMs)), ca: 'internal' };
    },
    async rootCertificatePem(context: RootContext): Promise<string> {
      return (await rootFor(context)).certificatePem;
    },
  };
}

/** Where the file store keeps a copy of the local CA's root to trust (Caddy's layout). */
export function localRootPath(dataDirectory: string): string {
  return path.join(dataDirectory, 'pki', 'authorities', 'local', 'root.crt');
}

/** The stored root's PEM, or undefined when none was created yet. Throws `CorruptLocalCAError` if unusable. */
export async function rootCertificatePem(storage: Storage): Promise<string | undefined> {
  const record = await readRecord(storage);
  return record && (await parseRoot(record)).certificatePem;
}

async function loadRoot(
  context: RootContext,
  rootLifetimeMs: number,
  commonName?: string,
): Promise<LoadedRoot> {
  const record =
    (await readRecord(context.storage)) ?? (await createRootOnce(context, rootLifetimeMs, commonName));
  const cached = parsedRoots.get(context.storage);
  if (cached?.certificatePem === record.certificatePem) return cached;
  const root = await parseRoot(record);
  parsedRoots.set(context.storage, root);
  await publishRoot(root, context);
  return root;
}

/**
 * Creates the root unless another instance just did: under the cluster's lock when the manager lends one,
 * so instances starting together on shared storage make one root, not one each.
 */
async function createRootOnce(
  context: RootContext,
  rootLifetimeMs: number,
  commonName?: string,
): Promise<LocalCARecord> {
  const lock = await context.locker?.acquire(lockNames.localCA);
  try {
    const existing = await readRecord(context.storage);
    if (existing) return existing;
    await context.storage.set(
      storageKeys.localCA(),
      await createRoot(context.clock.now(), rootLifetimeMs, commonName),
    );
    // Without a lock another process may have written its own root meanwhile: whatever storage holds is the root.
    const record = await readRecord(context.storage);
    if (!record) throw new Error('the local CA root was not found in storage right after it was written');
    return record;
  } finally {
    await lock?.release();
  }
}

async function readRecord(storage: Storage): Promise<LocalCARecord | undefined> {
  try {
    return await storage.get<LocalCARecord>(storageKeys.localCA());
  } catch (error) {
    if (error instanceof CorruptEntryError) throw new CorruptLocalCAError(error);
    throw error;
  }
}

async function parseRoot(record: LocalCARecord): Promise<LoadedRoot> {
  try {
    const { certificatePem, privateKeyPem } = record;
    const privateKey = createPrivateKey(privateKeyPem);
    if (!new NodeX509Certificate(certificatePem).checkPrivateKey(privateKey)) {
      throw new Error('the private key does not belong to the certificate');
    }
    const signingKey = await importSigningKey(privateKeyPem);
    return { certificatePem, certificate: new x509.X509Certificate(certificatePem), signingKey };
  } catch (error) {
    throw new CorruptLocalCAError(error);
  }
}

async function createRoot(nowMs: number, lifetimeMs: number, commonName?: string): Promise<LocalCARecord> {
  const privateKeyPem = generatePrivateKeyPem('ecdsa-p256');
  const signingKey = await importSigningKey(privateKeyPem);
  const publicKey = spkiOf(privateKeyPem);
  const name = [
    { CN: [commonName ?? `autotls Local Authority - ${new Date(nowMs).getUTCFullYear()} ECC Root`] },
  ];
  const certificate = await x509.X509CertificateGenerator.create({
    subject: name,
    issuer: name,
    publicKey,
    signingKey,
    serialNumber: randomSerialNumber(),
    notBefore: new Date(nowMs - clockSkewMs),
    notAfter: new Date(nowMs + lifetimeMs),
    extensions: [
      // pathLength 0: this root signs leaves directly, never intermediates.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
    ],
  });
  return { certificatePem: certificate.toString('pem'), privateKeyPem };
}

async function signLeaf(root: LoadedRoot, request: CertificateRequest, nowMs: number, lifetimeMs: number) {
  const [commonName] = request.names;
  if (commonName === undefined) throw new Error('a certificate needs at least one name');
  const rootExpiresMs = root.certificate.notAfter.getTime();
  if (rootExpiresMs <= nowMs) {
    throw new Error(
      `the local CA root expired at ${root.certificate.notAfter.toISOString()}; delete it to make a new one`,
    );
  }
  const privateKeyPem = generatePrivateKeyPem(request.keyType);
  const publicKey = spkiOf(privateKeyPem);
  const fitsCommonName = commonName.length <= maxCommonNameLength;
  const rootKeyId = root.certificate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const usages = request.keyType.startsWith('rsa')
    ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
    : x509.KeyUsageFlags.digitalSignature;
  const leaf = await x509.X509CertificateGenerator.create({
    ...(fitsCommonName ? { subject: [{ CN: [commonName] }] } : {}),
    issuer: root.certificate.subjectName,
    publicKey,
    signingKey: root.signingKey,
    serialNumber: randomSerialNumber(),
    notBefore: new Date(nowMs - clockSkewMs),
    notAfter: new Date(Math.min(nowMs + lifetimeMs, rootExpiresMs)),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(usages, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      // RFC 5280: with an empty subject the SAN must be critical.
      new x509.SubjectAlternativeNameExtension(
        request.names.map((name) => ({ type: isIP(name) ? 'ip' : 'dns', value: name })),
        !fitsCommonName,
      ),
      rootKeyId
        ? new x509.AuthorityKeyIdentifierExtension(rootKeyId)
        : await x509.AuthorityKeyIdentifierExtension.create(root.certificate.publicKey),
    ],
  });
  return { certificatePem: leaf.toString('pem'), privateKeyPem };
}

/**
 * With the default file store, the root is also a plain PEM file a user can point a trust store at; with
 * any other storage, the log says which command prints it (it lives only in that storage).
 */
async function publishRoot(root: LoadedRoot, context: RootContext): Promise<void> {
  const { directory } = context.storage;
  if (!directory) {
    context.logger.info(
      { root_common_name: root.certificate.subjectName.getField('CN')[0] },
      'local CA root ready in storage: print it with `npx autotls root --storage <url>`, or trust it on this machine with `npx autotls trust --storage <url>`',
    );
    return;
  }
  const rootPath = localRootPath(directory);
  const temporaryPath = `${rootPath}.${process.pid}.tmp`;
  await mkdir(path.dirname(rootPath), { recursive: true });
  await writeFile(temporaryPath, root.certificatePem);
  await chmod(temporaryPath, 0o644);
  await rename(temporaryPath, rootPath);
  context.logger.info(
    { root_path: rootPath, root_common_name: root.certificate.subjectName.getField('CN')[0] },
    'local CA root ready: trust this file to avoid browser warnings',
  );
}

function importSigningKey(privateKeyPem: string): Promise<webcrypto.CryptoKey> {
  const pkcs8 = createPrivateKey(privateKeyPem).export({ type: 'pkcs8', format: 'der' });
  return crypto.subtle.importKey('pkcs8', pkcs8, rootAlgorithm, false, ['sign']);
}

function spkiOf(privateKeyPem: string): Buffer {
  return createPublicKey(privateKeyPem).export({ type: 'spki', format: 'der' });
}

/** 16 random bytes; the generator prefixes a zero byte when needed to keep the serial positive. */
function randomSerialNumber(): string {
  return randomBytes(16).toString('hex');
}
