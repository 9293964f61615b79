/** @module Certificate records in storage: certificate, key and facts in one entry, read back defensively. */
import { type CachedCertificate, CertificateCache } from './cache.js';
import { type CertificateInfo, readCertificateInfo } from './certificates.js';
import { errorFields, type Logger } from './log.js';
import { wildcardFor } from './names.js';
import { storageKeys } from './storage/keys.js';
import { CorruptEntryError, type Storage } from './storage/storage.js';

/** One record per certificate: certificate, key and metadata are written together. */
export interface StoredCertificate {
  certificatePem: string;
  privateKeyPem: string;
  issuerKey: string;
  ca: string;
  obtainedAt: number;
  /** Names, validity, serial: loading thousands of names parses no certificate (older records are parsed). */
  info?: CertificateInfo;
  /** The ACME profile it was issued under; its renewal asks for the same one. */
  profile?: string;
  /** The ACME account URL that ordered it: ARI `replaces` is sent from this account only. */
  account?: string;
}

/**
 * The newest usable stored certificate for `name` across issuers (after a renewal from a fallback issuer,
 * the first issuer's entry is the older one). A corrupt or unusable entry is logged and skipped — it will
 * be replaced — but a failing store throws: it must never read as "no certificate". With `verify`, the TLS
 * context is built now (checking that key and certificate match); otherwise on the first handshake.
 */
export async function readStoredCertificate(
  storage: Storage,
  issuerKeys: string[],
  name: string,
  logger: Logger,
  { verify = false }: { verify?: boolean } = {},
): Promise<CachedCertificate | undefined> {
  let newest: CachedCertificate | undefined;
  for (const issuerKey of issuerKeys) {
    const key = storageKeys.certificate(issuerKey, name);
    let record: StoredCertificate | undefined;
    try {
      record = await storage.get<StoredCertificate>(key);
    } catch (error) {
      if (!(error instanceof CorruptEntryError)) throw error;
      logger.error(
        { identifier: name, key, ...errorFields(error) },
        'unusable certificate in storage; a new one will be obtained',
      );
      continue;
    }
    if (!record) continue;
    try {
      const info = isCertificateInfo(record.info) ? record.info : readCertificateInfo(record.certificatePem);
      const wildcard = wildcardFor(name);
      if (!info.names.includes(name) && !(wildcard && info.names.includes(wildcard))) {
        throw new Error(`certificate does not cover ${name}`);
      }
      const entry = CertificateCache.entry({
        info,
        issuerKey,
        certificatePem: record.certificatePem,
        privateKeyPem: record.privateKeyPem,
      });
      if (verify) void entry.secureContext;
      if (!newest || entry.info.notAfter > newest.info.notAfter) newest = entry;
    } catch (error) {
      logger.error(
        { identifier: name, key, ...errorFields(error) },
        'unusable certificate in storage; a new one will be obtained',
      );
    }
  }
  return newest;
}

function isCertificateInfo(value: unknown): value is CertificateInfo {
  const info = value as CertificateInfo | undefined;
  return (
    Array.isArray(info?.names) &&
    typeof info.notBefore === 'number' &&
    typeof info.notAfter === 'number' &&
    typeof info.serialNumber === 'string' &&
    typeof info.issuer === 'string'
  );
}

/**
 * A newly issued certificate as one record (certificate, key and facts together) and ready to serve. The
 * TLS context is built first: a certificate whose key does not fit is never stored.
 */
export function issuedRecord(
  name: string,
  issued: { certificatePem: string; privateKeyPem: string; ca: string; profile?: string; account?: string },
  issuerKey: string,
  obtainedAtMs: number,
): { key: string; record: StoredCertificate; entry: CachedCertificate } {
  const info = readCertificateInfo(issued.certificatePem);
  const entry = CertificateCache.entry({
    info,
    issuerKey,
    certificatePem: issued.certificatePem,
    privateKeyPem: issued.privateKeyPem,
  });
  void entry.secureContext;
  const record: StoredCertificate = {
    certificatePem: issued.certificatePem,
    privateKeyPem: issued.privateKeyPem,
    issuerKey,
    ca: issued.ca,
    obtainedAt: obtainedAtMs,
    info,
    ...(issued.profile ? { profile: issued.profile } : {}),
    ...(issued.account ? { account: issued.account } : {}),
  };
  return { key: storageKeys.certificate(issuerKey, name), record, entry };
}

/** How a stored certificate was ordered, for its renewal: the profile and the account (absent in old records). */
export interface StoredOrderFacts {
  profile?: string;
  account?: string;
}

/**
 * The profile and account of `name`'s record at `issuerKey`; empty when there is none or it cannot be read
 * (a renewal then orders as a first obtain would).
 * @example const { profile, account } = await readStoredOrderFacts(storage, 'ca-dir', 'example.com');
 */
export async function readStoredOrderFacts(
  storage: Storage,
  issuerKey: string,
  name: string,
): Promise<StoredOrderFacts> {
  const record = await storage
    .get<StoredCertificate>(storageKeys.certificate(issuerKey, name))
    .catch(() => undefined);
  return {
    ...(typeof record?.profile === 'string' ? { profile: record.profile } : {}),
    ...(typeof record?.account === 'string' ? { account: record.account } : {}),
  };
}
