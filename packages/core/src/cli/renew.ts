/**
 * @module `autotls renew` and `autotls revoke`: a renewal request stored for the running app (every
 * instance honours it at its next maintenance pass, once: it names the serial to replace), and revocation at
 * the CA with the account that ordered the certificate.
 */
import { readFile } from 'node:fs/promises';
import { systemClock } from '../clock.js';
import { AcmeTransport } from '../issuers/acme-transport.js';
import { normalizeName } from '../names.js';
import { type RenewalRequestRecord, writeRenewalRequest } from '../status.js';
import { listEntries } from '../storage/clean.js';
import { storageKeys } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';
import type { StoredCertificate } from '../stored-certificates.js';
import { statusRows } from './status.js';
import { CliError } from './storage.js';

/** RFC 5280 §5.3.1 reason codes, by the names `--reason` takes. */
export const REVOCATION_REASONS: Record<string, number> = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
  aACompromise: 10,
};

/** A CA that does not answer a revocation in this long is reported, not waited on. */
const REVOKE_REQUEST_TIMEOUT_MS = 15_000;

/** Asks the running app to renew `name`; returns the serial that will be replaced. */
export async function requestRenewal(
  storage: Storage,
  nameArgument: string,
  reason: RenewalRequestRecord['reason'] = 'requested',
): Promise<string> {
  const name = normalizeName(nameArgument);
  const row = (await statusRows(storage)).find((candidate) => candidate.name === name);
  if (!row?.serial) throw new CliError(`no certificate for ${name} in this storage`);
  await writeRenewalRequest(storage, name, { serial: row.serial, requestedAt: Date.now(), reason });
  return row.serial;
}

/** Revokes `name`'s newest certificate at its CA, then asks the app to replace it. */
export async function revoke(
  storage: Storage,
  nameArgument: string,
  options: { reason?: string; caFile?: string },
): Promise<{ serial: string; ca: string }> {
  const name = normalizeName(nameArgument);
  const reasonCode = REVOCATION_REASONS[options.reason ?? 'unspecified'];
  if (reasonCode === undefined) {
    throw new CliError(`--reason must be one of ${Object.keys(REVOCATION_REASONS).join(', ')}`, 2);
  }
  const row = (await statusRows(storage)).find((candidate) => candidate.name === name);
  if (!row?.serial || !row.issuer) throw new CliError(`no certificate for ${name} in this storage`);
  const record = await storage.get<StoredCertificate>(storageKeys.certificate(row.issuer, name));
  if (!record || record.ca === 'internal') {
    throw new CliError(
      `${name} is issued by the local CA, which publishes no revocation: untrust it instead`,
    );
  }
  const account = await issuingAccount(storage, record);
  const transport = new AcmeTransport({
    directoryUrl: record.ca,
    accountKeyPem: account.privateKeyPem,
    accountUrl: account.url,
    ...(options.caFile && { caPem: await readFile(options.caFile, 'utf8') }),
    requestTimeoutMs: REVOKE_REQUEST_TIMEOUT_MS,
    clock: systemClock,
  });
  try {
    await transport.client.revokeCertificate(record.certificatePem, { reason: reasonCode });
  } catch (error) {
    throw new CliError(`the CA refused to revoke ${name}: ${(error as Error).message}`);
  } finally {
    transport.close();
  }
  await writeRenewalRequest(storage, name, {
    serial: row.serial,
    requestedAt: Date.now(),
    reason: 'revoked',
  });
  return { serial: row.serial, ca: record.ca };
}

/** The stored account that ordered `record` (its URL is in the record); else the only account at that CA. */
async function issuingAccount(
  storage: Storage,
  record: StoredCertificate,
): Promise<{ privateKeyPem: string; url: string }> {
  const accounts = ((await listEntries(storage, ['accounts/'])) ?? [])
    .map(([, value]) => value as { privateKeyPem?: string; url?: string })
    .filter((account): account is { privateKeyPem: string; url: string } =>
      Boolean(account?.privateKeyPem && account.url),
    );
  const origin = new URL(record.ca).origin;
  const match = record.account
    ? accounts.find((account) => account.url === record.account)
    : accounts.filter((account) => account.url.startsWith(origin)).at(0);
  if (!match) throw new CliError('the ACME account that ordered this certificate is not in this storage');
  return match;
}
