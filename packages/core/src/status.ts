/**
 * @module Stored status per name: the outcome of the last attempt, written by whichever instance made it, so
 * the `autotls` CLI and every instance of a cluster see the same. Bounded in size; holds no key, no token.
 */
import type { CertificateInfo } from './certificates.js';
import { errorFields, type Logger } from './log.js';
import { AcmeProblemError } from './problems.js';
import { storageKeys } from './storage/keys.js';
import type { Storage } from './storage/storage.js';

/** A CA's detail is usually a sentence; an HTML error page is not stored whole. */
const MAX_DETAIL_CHARS = 500;

export interface StoredError {
  /** The ACME problem type (`urn:ietf:params:acme:error:dns`), else the error's name. */
  type: string;
  detail: string;
  /** The ACME directory URL the problem came from, when one did. */
  ca?: string;
}

/** What `status/<name>` holds; times in ms since the epoch. Failure fields are absent after a success. */
export interface NameStatus {
  lastSuccessAt?: number;
  /** Serial of the certificate obtained last (by any instance). */
  serial?: string;
  /** When the certificate obtained last becomes due by the lifetime ratio (ARI may make it earlier). */
  renewalAt?: number;
  failedAttempts?: number;
  lastError?: StoredError;
  lastFailureAt?: number;
  /** Absent after a give-up: no further attempt is scheduled. */
  nextAttemptAt?: number;
}

/** A renewal asked for from outside (`autotls renew`, `autotls revoke`): honoured while `serial` is served. */
export interface RenewalRequestRecord {
  /** The certificate to replace; once another serves, the request is spent (so it is done once). */
  serial: string;
  requestedAt: number;
  reason: 'requested' | 'revoked';
}

export function readNameStatus(storage: Storage, name: string): Promise<NameStatus | undefined> {
  return storage.get<NameStatus>(storageKeys.status(name));
}

export function readRenewalRequest(
  storage: Storage,
  name: string,
): Promise<RenewalRequestRecord | undefined> {
  return storage.get<RenewalRequestRecord>(storageKeys.renewalRequest(name));
}

/** The reason of a renewal asked for from outside (`autotls renew`/`revoke`) while `serial` is served. */
export async function requestedRenewal(
  storage: Storage,
  name: string,
  serial: string,
): Promise<RenewalRequestRecord['reason'] | undefined> {
  const request = await readRenewalRequest(storage, name);
  return request?.serial === serial ? request.reason : undefined;
}

export function writeRenewalRequest(storage: Storage, name: string, request: RenewalRequestRecord) {
  return storage.set(storageKeys.renewalRequest(name), request);
}

/** The problem behind a failure: the first ACME problem of an attempt's issuers, else the error itself. */
export function storedError(error: unknown): StoredError {
  const causes = error instanceof AggregateError ? error.errors : [error];
  const problem = causes.find((cause) => cause instanceof AcmeProblemError);
  if (problem) {
    return {
      type: problem.problem.type,
      detail: String(problem.problem.detail ?? '').slice(0, MAX_DETAIL_CHARS),
      ca: problem.context.ca,
    };
  }
  const first = causes[0] ?? error;
  return {
    type: first instanceof Error ? first.name : 'Error',
    detail: (first instanceof Error ? first.message : String(first)).slice(0, MAX_DETAIL_CHARS),
  };
}

/**
 * Writes each name's status, one write at a time per name and in order, so a success is never overtaken by
 * the failure before it. A failing store is logged: status never fails an attempt.
 */
export class StatusWriter {
  private readonly writes = new Map<string, Promise<void>>();

  constructor(
    private readonly storage: Storage,
    private readonly logger: Logger,
    private readonly windowRatio: number,
  ) {}

  failed(name: string, failure: { error: unknown; attempt: number; atMs: number; retryingInMs?: number }) {
    this.update(name, (previous) => ({
      ...(previous?.lastSuccessAt !== undefined && { lastSuccessAt: previous.lastSuccessAt }),
      ...(previous?.serial !== undefined && { serial: previous.serial }),
      ...(previous?.renewalAt !== undefined && { renewalAt: previous.renewalAt }),
      failedAttempts: failure.attempt,
      lastError: storedError(failure.error),
      lastFailureAt: failure.atMs,
      ...(failure.retryingInMs !== undefined && { nextAttemptAt: failure.atMs + failure.retryingInMs }),
    }));
  }

  /** A certificate is served: the failure fields go, and a renewal request for the old one is spent. */
  succeeded(name: string, info: CertificateInfo, atMs: number) {
    const lifetimeMs = info.notAfter - info.notBefore;
    this.update(name, () => ({
      lastSuccessAt: atMs,
      serial: info.serialNumber,
      renewalAt: Math.round(info.notAfter - lifetimeMs * this.windowRatio),
    }));
    this.chain(name, () => this.storage.delete(storageKeys.renewalRequest(name)));
  }

  /** Resolves when every write asked for so far has ended. */
  async flushed(): Promise<void> {
    await Promise.all(this.writes.values());
  }

  private update(name: string, next: (previous: NameStatus | undefined) => NameStatus) {
    const key = storageKeys.status(name);
    this.chain(name, async () => {
      const previous = await this.storage.get<NameStatus>(key).catch(() => undefined);
      await this.storage.set(key, next(previous));
    });
  }

  private chain(name: string, write: () => Promise<void>) {
    const done = (this.writes.get(name) ?? Promise.resolve())
      .then(write)
      .catch((error: unknown) =>
        this.logger.warn({ identifier: name, ...errorFields(error) }, 'writing certificate status failed'),
      );
    this.writes.set(name, done);
    void done.then(() => {
      if (this.writes.get(name) === done) this.writes.delete(name);
    });
  }
}
