/** @module Certificate records in storage: certificate, key and facts in one entry, read back defensively. */
import { type CachedCertificate, CertificateCache } from './cache.js';
import { type CertificateInfo, readCertificateInfo } from './certificates.js';
import { errorFields, type Logger } from './log.js';
import { wildcardFor } from './names.js';
import { findCertificateAndKey, setAside } from './storage/corrupt.js';
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

/** What a read does with an entry it cannot use. */
export interface UnusableEntries {
  /** Move it under `corrupt/` (only under the name's lock: nobody else writes it meanwhile). */
  setAside: boolean;
  nowMs: number;
}

/**
 * The newest usable stored certificate for `name` across issuers (after a renewal from a fallback issuer,
 * the first issuer's entry is the older one). A corrupt or unusable entry is logged and skipped — it will
 * be replaced, and with `unusable.setAside` it is moved under `corrupt/` first — but a failing store
 * throws: it must never read as "no certificate". A certificate and key in another shape are adopted.
 * With `verify`, the TLS context is built now (checking that key and certificate match); otherwise on
 * the first handshake.
 */
export async function readStoredCertificate(
  storage: Storage,
  issuerKeys: string[],
  name: string,
  logger: Logger,
  { verify = false, unusable }: { verify?: boolean; unusable?: UnusableEntries } = {},
): Promise<CachedCertificate | undefined> {
  let newest: CachedCertificate | undefined;
  for (const issuerKey of issuerKeys) {
    const key = storageKeys.certificate(issuerKey, name);
    let record: StoredCertificate | undefined;
    let raw: unknown;
    try {
      record = await storage.get<StoredCertificate>(key);
      raw = record;
    } catch (error) {
      if (!(error instanceof CorruptEntryError)) throw error;
      raw = { raw: error.raw };
      const found = findCertificateAndKey(error.raw);
      if (!found) {
        logger.error(
          { identifier: name, key, ...errorFields(error) },
          'unusable certificate in storage; a new one will be obtained',
        );
        await setAsideIfAsked(storage, key, raw, name, logger, unusable);
        continue;
      }
      record = { salvaged: found } as unknown as StoredCertificate; // adopted below, as another shape
    }
    if (!record) continue;
    try {
      const entry = usableEntry(record, issuerKey, name, verify, logger, key);
      if (!newest || entry.info.notAfter > newest.info.notAfter) newest = entry;
    } catch (error) {
      logger.error(
        { identifier: name, key, ...errorFields(error) },
        'unusable certificate in storage; a new one will be obtained',
      );
      await setAsideIfAsked(storage, key, raw, name, logger, unusable);
    }
  }
  return newest;
}

/** The record as a certificate to serve; throws when it cannot serve `name`. */
function usableEntry(
  record: StoredCertificate,
  issuerKey: string,
  name: string,
  verify: boolean,
  logger: Logger,
  key: string,
): CachedCertificate {
  let pems: { certificatePem: string; privateKeyPem: string } = record;
  const ourShape = typeof record.certificatePem === 'string' && typeof record.privateKeyPem === 'string';
  if (!ourShape) {
    const found = findCertificateAndKey(record);
    if (!found) throw new Error('the entry holds no certificate and private key');
    pems = found;
  }
  const info =
    ourShape && isCertificateInfo(record.info) ? record.info : readCertificateInfo(pems.certificatePem);
  const wildcard = wildcardFor(name);
  if (!info.names.includes(name) && !(wildcard && info.names.includes(wildcard))) {
    throw new Error(`certificate does not cover ${name}`);
  }
  const entry = CertificateCache.entry({ info, issuerKey, ...pems });
  if (verify || !ourShape) void entry.secureContext;
  if (!ourShape) {
    logger.warn(
      { identifier: name, key, serial: info.serialNumber },
      'adopted a certificate and key stored in another shape',
    );
  }
  return entry;
}

async function setAsideIfAsked(
  storage: Storage,
  key: string,
  value: unknown,
  name: string,
  logger: Logger,
  unusable: UnusableEntries | undefined,
): Promise<void> {
  if (!unusable?.setAside) return;
  const movedTo = await setAside(storage, key, value, unusable.nowMs);
  logger.warn({ identifier: name, key, moved_to: movedTo }, 'unusable certificate entry moved aside');
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
