/**
 * @module `autotls status`: one row per stored certificate or failing name, from storage alone — the
 * certificate's own dates and serial, the renewal time, and the last failure while the name is failing.
 */
import type { StoredRenewalInfo } from '../ari.js';
import { type CertificateInfo, readCertificateInfo } from '../certificates.js';
import { DEFAULT_RENEWAL_WINDOW_RATIO } from '../renewal.js';
import type { NameStatus, RenewalRequestRecord, StoredError } from '../status.js';
import { listEntries } from '../storage/clean.js';
import { nameOfSegment, storageKeys } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';
import type { StoredCertificate } from '../stored-certificates.js';

/** One name as `status --json` prints it; times ISO 8601. */
export interface StatusRow {
  name: string;
  issuer?: string;
  notBefore?: string;
  notAfter?: string;
  serial?: string;
  /** When it is due for renewal (the ARI selected time when earlier); inside the certificate's lifetime. */
  renewalAt?: string;
  /** The CA's suggested renewal window (ARI, RFC 9773) for this certificate, when it offers one. */
  ariWindow?: { start: string; end: string };
  /** Set while `autotls renew`/`revoke` waits for the app's next maintenance pass. */
  renewalRequested?: boolean;
  failedAttempts?: number;
  lastError?: StoredError;
  lastFailureAt?: string;
  nextAttemptAt?: string;
}

interface Found {
  certificate?: { issuer: string; info: CertificateInfo };
  status?: NameStatus;
  ari: StoredRenewalInfo[];
  request?: RenewalRequestRecord;
}

/** Every name storage knows, sorted. */
export async function statusRows(storage: Storage): Promise<StatusRow[]> {
  const prefixes = [
    storageKeys.certificatesPrefix,
    storageKeys.statusPrefix,
    storageKeys.renewalInfoPrefix,
    storageKeys.renewalRequest(''),
  ];
  const entries = await listEntries(storage, prefixes);
  if (!entries) throw new Error('this storage cannot list its entries');
  const byName = new Map<string, Found>();
  const found = (name: string) => {
    const entry = byName.get(name) ?? { ari: [] };
    byName.set(name, entry);
    return entry;
  };
  for (const [key, value] of entries) {
    const parts = key.split('/');
    const segment = parts.at(-1) ?? '';
    if (!value || typeof value !== 'object') continue;
    if (key.startsWith(storageKeys.certificatesPrefix) && parts.length === 3) {
      const info = certificateInfo(value as StoredCertificate);
      const entry = found(nameOfSegment(segment));
      if (info && (!entry.certificate || info.notAfter > entry.certificate.info.notAfter)) {
        entry.certificate = { issuer: parts[1] ?? '', info };
      }
    } else if (key.startsWith(storageKeys.statusPrefix)) {
      found(nameOfSegment(segment)).status = value as NameStatus;
    } else if (key.startsWith(storageKeys.renewalInfoPrefix)) {
      found(nameOfSegment(segment)).ari.push(value as StoredRenewalInfo);
    } else {
      found(nameOfSegment(segment)).request = value as RenewalRequestRecord;
    }
  }
  return [...byName.entries()]
    .filter(([, entry]) => entry.certificate || entry.status?.failedAttempts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, entry]) => row(name, entry));
}

function row(name: string, { certificate, status, ari, request }: Found): StatusRow {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  const info = certificate?.info;
  const failing = status?.failedAttempts
    ? {
        failedAttempts: status.failedAttempts,
        ...(status.lastError && { lastError: status.lastError }),
        lastFailureAt: iso(status.lastFailureAt),
        ...(status.nextAttemptAt !== undefined && { nextAttemptAt: iso(status.nextAttemptAt) }),
      }
    : {};
  return {
    name,
    ...(certificate &&
      info && {
        issuer: certificate.issuer,
        notBefore: iso(info.notBefore),
        notAfter: iso(info.notAfter),
        serial: info.serialNumber,
        renewalAt: iso(renewalAtMs(info, status, ari)),
        ...ariWindowOf(info, ari),
        ...(request?.serial === info.serialNumber && { renewalRequested: true }),
      }),
    ...failing,
  };
}

/**
 * The app's renewal time: its lifetime-ratio time (recorded with the certificate's serial; else the default
 * ratio), or the ARI selected time stored for this certificate when earlier, kept inside the lifetime.
 */
function renewalAtMs(
  info: CertificateInfo,
  status: NameStatus | undefined,
  ari: StoredRenewalInfo[],
): number {
  const lifetimeMs = info.notAfter - info.notBefore;
  const ratioMs =
    status?.serial === info.serialNumber && status.renewalAt !== undefined
      ? status.renewalAt
      : Math.round(info.notAfter - lifetimeMs * DEFAULT_RENEWAL_WINDOW_RATIO);
  const selected = ari
    .filter((record) => record.certificateNotAfterMs === info.notAfter)
    .map((record) => record.selectedTimeMs);
  const dueMs = Math.min(ratioMs, ...selected);
  return Math.min(Math.max(dueMs, info.notBefore), info.notAfter);
}

function ariWindowOf(info: CertificateInfo, ari: StoredRenewalInfo[]): Pick<StatusRow, 'ariWindow'> {
  const record = ari.find((candidate) => candidate.certificateNotAfterMs === info.notAfter);
  if (!record) return {};
  const iso = (ms: number) => new Date(ms).toISOString();
  return { ariWindow: { start: iso(record.windowStartMs), end: iso(record.windowEndMs) } };
}

function certificateInfo(record: StoredCertificate): CertificateInfo | undefined {
  if (record.info && typeof record.info.notAfter === 'number') return record.info;
  try {
    return readCertificateInfo(record.certificatePem);
  } catch {
    return undefined;
  }
}

const DAY_MS = 24 * 60 * 60_000;

/** The table a person reads at a glance; red for failing or nearly expired names, on a terminal only. */
export function statusTable(rows: StatusRow[], nowMs: number, colour: boolean): string {
  if (rows.length === 0) return 'no certificates in this storage\n';
  const header = ['NAME', 'ISSUER', 'EXPIRES', 'RENEWS', 'SERIAL', 'STATUS'];
  const lines = rows.map((row) => {
    const days = (iso?: string) => (iso ? `${((Date.parse(iso) - nowMs) / DAY_MS).toFixed(1)}d` : '-');
    const state = row.failedAttempts
      ? `failing (${row.failedAttempts}x): ${row.lastError?.type.replace('urn:ietf:params:acme:error:', '') ?? 'error'}${
          row.nextAttemptAt ? `, next try ${row.nextAttemptAt}` : ', gave up'
        }`
      : row.renewalRequested
        ? 'renewal requested'
        : 'ok';
    const cells = [
      row.name,
      row.issuer ?? '-',
      row.notAfter ? `${row.notAfter} (${days(row.notAfter)})` : 'none',
      row.renewalAt ? days(row.renewalAt) : '-',
      row.serial ?? '-',
      state,
    ];
    const alarming =
      Boolean(row.failedAttempts) || !row.notAfter || Date.parse(row.notAfter) - nowMs < 7 * DAY_MS;
    return { cells, alarming };
  });
  const widths = header.map((title, column) =>
    Math.max(title.length, ...lines.map(({ cells }) => (cells[column] ?? '').length)),
  );
  const format = (cells: string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd();
  const body = lines.map(({ cells, alarming }) =>
    colour && alarming ? `\u001b[31m${format(cells)}\u001b[0m` : format(cells),
  );
  return `${[format(header), ...body].join('\n')}\n`;
}
