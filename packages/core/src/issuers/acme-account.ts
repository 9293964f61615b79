/** @module ACME accounts: one registered account per CA directory, stored and reused, re-registered when forgotten. */
import { generatePrivateKeyPem } from '../certificates.js';
import { AcmeProblemError } from '../problems.js';
import { lockNames, storageKeys } from '../storage/keys.js';
import { CorruptEntryError } from '../storage/storage.js';
import {
  type AcmeIssuerOptions,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type ExternalAccountBinding,
} from './acme-options.js';
import { AcmeTransport } from './acme-transport.js';
import type { IssuerContext } from './issuer.js';

interface StoredAccount {
  privateKeyPem: string;
  url: string;
}

/** Storage-safe id of a directory, Caddy style: `acme-v02.api.letsencrypt.org-directory`. */
export function issuerKeyFor(directoryUrl: string): string {
  const url = new URL(directoryUrl);
  return `${url.host}${url.pathname}`.replace(/[^a-zA-Z0-9.]+/g, '-').replace(/-+$/, '');
}

/** Transports with a registered account, one per directory URL, opened once and shared by every attempt. */
export class AcmeAccounts {
  private readonly sessions = new Map<string, Promise<AcmeTransport>>();

  constructor(private readonly options: AcmeIssuerOptions) {}

  /** Transport with a registered account for one directory; the account is stored and reused. */
  session(directoryUrl: string, context: IssuerContext): Promise<AcmeTransport> {
    let session = this.sessions.get(directoryUrl);
    if (!session) {
      session = this.open(directoryUrl, context);
      this.sessions.set(directoryUrl, session);
      session.catch(() => this.sessions.delete(directoryUrl));
    }
    return session;
  }

  /** The CA no longer knows our account: drop it, so the next session registers a new one. */
  async forget(directoryUrl: string, context: IssuerContext): Promise<void> {
    this.sessions.delete(directoryUrl);
    await context.storage.delete(this.storageKey(directoryUrl, context));
  }

  close(): void {
    for (const session of this.sessions.values())
      session.then(
        (transport) => transport.close(),
        () => {},
      );
    this.sessions.clear();
  }

  private storageKey(directoryUrl: string, context: IssuerContext): string {
    return storageKeys.account(issuerKeyFor(directoryUrl), this.options.email ?? context.email ?? '');
  }

  private transport(
    directoryUrl: string,
    context: IssuerContext,
    account: { accountKeyPem: string; accountUrl?: string; eab?: ExternalAccountBinding },
  ): AcmeTransport {
    return new AcmeTransport({
      directoryUrl,
      ...account,
      caPem: this.options.ca,
      requestTimeoutMs: this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      clock: context.clock,
    });
  }

  private async open(directoryUrl: string, context: IssuerContext): Promise<AcmeTransport> {
    const key = this.storageKey(directoryUrl, context);
    const stored = await this.stored(directoryUrl, context, key);
    if (stored) return stored;
    if (!context.locker) return this.register(directoryUrl, context, key);
    // Instances starting together would each register an account: one does, under a lock; the others
    // find it in storage once they hold the lock.
    const lock = await context.locker.acquire(lockNames.account(key));
    try {
      return (
        (await this.stored(directoryUrl, context, key)) ?? (await this.register(directoryUrl, context, key))
      );
    } finally {
      await lock.release();
    }
  }

  private async stored(
    directoryUrl: string,
    context: IssuerContext,
    key: string,
  ): Promise<AcmeTransport | undefined> {
    const stored = await context.storage.get<StoredAccount>(key).catch((error: unknown) => {
      if (error instanceof CorruptEntryError) return undefined; // re-register; nothing else depends on it
      throw error;
    });
    if (!stored?.privateKeyPem || !stored.url) return undefined;
    return this.transport(directoryUrl, context, {
      accountKeyPem: stored.privateKeyPem,
      accountUrl: stored.url,
    });
  }

  private async register(directoryUrl: string, context: IssuerContext, key: string): Promise<AcmeTransport> {
    const email = this.options.email ?? context.email ?? '';
    const eab =
      typeof this.options.eab === 'function' ? await this.options.eab(email || undefined) : this.options.eab;
    const privateKeyPem = generatePrivateKeyPem('ecdsa-p256');
    const transport = this.transport(directoryUrl, context, { accountKeyPem: privateKeyPem, eab });
    const response = await transport.post(
      await transport.resourceUrl('newAccount'),
      { termsOfServiceAgreed: true, ...(email ? { contact: [`mailto:${email}`] } : {}) },
      { useKid: false, eab: Boolean(eab) },
    );
    const url = response.headers.location;
    if (!url) throw new Error(`${directoryUrl}: newAccount answered without a Location header`);
    transport.accountUrl = url;
    await context.storage.set(key, { privateKeyPem, url } satisfies StoredAccount);
    context.logger.info(
      { ca: directoryUrl, account: url, email: email || undefined },
      'registered ACME account',
    );
    return transport;
  }
}

/**
 * A CA that lost our account may say so only with a bare 500 (Caddy's ACME server answers `{}`): ask it
 * whether the account exists, and if not, turn the error into `accountDoesNotExist` so the issuer registers
 * a new one within this attempt.
 */
export async function accountForgottenOr(
  error: unknown,
  transport: AcmeTransport,
  signal?: AbortSignal,
): Promise<unknown> {
  if (!(error instanceof AcmeProblemError) || error.problem.status < 500) return error;
  if (error.problem.type !== 'about:blank') return error;
  if ((await transport.accountExists(signal)) !== false) return error;
  return new AcmeProblemError(
    {
      type: 'urn:ietf:params:acme:error:accountDoesNotExist',
      detail: `the CA no longer knows account ${transport.accountUrl} (it answered: ${error.message})`,
      status: 400,
    },
    error.context,
  );
}
