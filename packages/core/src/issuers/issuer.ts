/** @module The contract every certificate issuer (ACME CA, local CA) implements. */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { RateLimiters } from '../ratelimit.js';
import type { Locker } from '../storage/locks.js';
import type { Storage } from '../storage/storage.js';

export type KeyType = 'ecdsa-p256' | 'ecdsa-p384' | 'rsa-2048' | 'rsa-4096';

export interface CertificateRequest {
  /** Normalised names; the first is the subject's common name. */
  names: string[];
  keyType: KeyType;
  /** Ask the issuer's test (staging) CA instead of production; its certificate is thrown away. */
  useTestCA?: boolean;
  /** ARI: the certificate this one replaces (RFC 9773 certificate identifier). */
  replaces?: string;
  /** The ACME account that ordered the certificate being replaced: `replaces` goes to that account only. */
  replacesAccount?: string;
  /** The ACME profile the certificate being renewed was ordered with, used again unless one is configured. */
  profile?: string;
  signal?: AbortSignal;
  /** Throws when the lock this attempt runs under may be lost; called right before every CA request. */
  assertLease?: () => void;
  /** The issuer (by key) whose rate limiter already admitted this attempt's first order. */
  admittedFor?: string;
}

export interface IssuedCertificate {
  /** Leaf first, then the chain, PEM. */
  certificatePem: string;
  privateKeyPem: string;
  /** Where it came from: the ACME directory URL, or `internal`. */
  ca: string;
  /** The ACME profile it was issued under, when the order named one. */
  profile?: string;
  /** The ACME account URL that ordered it (ARI `replaces` may only come from the same account). */
  account?: string;
}

/** What the manager lends an issuer: shared storage, logging, time, and the challenge solvers. */
export interface IssuerContext {
  storage: Storage;
  logger: Logger;
  clock: Clock;
  email?: string;
  /** Solvers by ACME challenge type (`http-01`, `tls-alpn-01`, `dns-01`). */
  solvers: Map<string, ChallengeSolver>;
  /** New-order limiters keyed by `<directory>|<account>`. */
  rateLimiters: RateLimiters;
  /** The manager's locker: one-time work shared by a cluster (registering an account) runs under it. */
  locker?: Locker;
}

export interface Issuer {
  /** Stable, storage-safe id, e.g. `acme-v02.api.letsencrypt.org-directory` or `local`. */
  readonly key: string;
  /** True when the issuer has a test CA to use while retrying. */
  readonly hasTestCA: boolean;
  issue(request: CertificateRequest, context: IssuerContext): Promise<IssuedCertificate>;
  /** Frees connections; the issuer can still be used afterwards. */
  close?(): void;
}

/** Makes a challenge answerable, then cleans it up. `present` resolves once the answer is live. */
export interface ChallengeSolver {
  present(challenge: PresentedChallenge): Promise<void>;
  cleanup(challenge: PresentedChallenge): Promise<void>;
}

export interface PresentedChallenge {
  type: string;
  /** The name, or the IP address (RFC 8738) when `identifierType` is `ip`. */
  identifier: string;
  /** `ip` for an IP address identifier; default `dns`. */
  identifierType?: 'dns' | 'ip';
  token: string;
  keyAuthorization: string;
  /** Aborted when the manager closes: a solver that waits (for DNS propagation) stops waiting. */
  signal?: AbortSignal;
}
