/** @module @autotls/core: automatic HTTPS for any Node.js server. */

export { AdapterCore, type AdapterOptions, type AdapterRequest, type AutoTls } from './adapter.js';
export {
  DEFAULT_MAX_RETRY_DURATION_MS,
  DEFAULT_RETRY_INTERVALS_MS,
  type RetryOptions,
  renewalRetryDelayMs,
  retryDelayMs,
} from './backoff.js';
export type { CachedCertificate } from './cache.js';
export { type CertificateInfo, readCertificateInfo } from './certificates.js';
export type { Clock } from './clock.js';
export { type CertManagerOptions, KEY_TYPES, type ManagerConfig, resolveConfig } from './config.js';
export {
  type AcmeRequestMessage,
  type CertificateExpiringMessage,
  type CertificateServedMessage,
  diagnosticsChannels,
  type ObtainFailureMessage,
  type RateLimiterWaitMessage,
} from './diagnostics.js';
export { CnameChainError } from './dns/lookup.js';
export { DnsUpdateError } from './dns/update.js';
export type { DnsResolver } from './dns-watch.js';
export { ConfigurationError, isNoRetry, NoRetryError } from './errors.js';
export { EXPIRY_WARNING_RATIO } from './expiry.js';
export {
  answerHttpRequest,
  type HttpAnswerOptions,
  httpChallengeRequestOf,
  plainHttpHandler,
  redirectToHttps,
  writeHttpResponse,
} from './http.js';
export {
  AcmeIssuer,
  type AcmeIssuerOptions,
  acme,
  type ChallengeType,
  type ExternalAccountBinding,
} from './issuers/acme.js';
export { letsEncrypt, zeroSSL } from './issuers/acme-cas.js';
export { internal, localRootPath } from './issuers/internal.js';
export type {
  CertificateRequest,
  ChallengeSolver,
  IssuedCertificate,
  Issuer,
  IssuerContext,
  KeyType,
} from './issuers/issuer.js';
export { createDefaultLogger, type Logger, silentLogger } from './log.js';
export {
  CertManager,
  type CertManagerEvents,
  createManager,
  type ManagedCertificate,
} from './manager.js';
export { InvalidNameError, isInternalName, normalizeName } from './names.js';
export { DEFAULT_ON_DEMAND_HANDSHAKE_TIMEOUT_MS, type OnDemandOptions } from './on-demand.js';
export { AllIssuersFailedError } from './policy.js';
export { type AcmeProblem, AcmeProblemError } from './problems.js';
export type { RenewalOptions, RenewalReason } from './renewal.js';
export {
  type FirstOutcome,
  RetryJob,
  type RetryJobOptions,
  type RetryListener,
  type RetrySchedule,
} from './retry.js';
export {
  type AutoTlsServers,
  closeServer,
  ListenError,
  type ListenOptions,
  listenHttpAndHttps,
  listenServer,
  trackConnections,
} from './servers.js';
export { type DnsPropagationOptions, DnsPropagationTimeoutError } from './solvers/dns-propagation.js';
export type { DnsProvider } from './solvers/dns01.js';
export type { HttpChallengeRequest, HttpChallengeResponse } from './solvers/http01.js';
export { type Rfc2136Options, rfc2136 } from './solvers/rfc2136.js';
export type { NameStatus, StoredError } from './status.js';
export type { AcquireOptions, Lock, Locker } from './storage/locks.js';
export {
  CorruptEntryError,
  defaultDataDirectory,
  isKeyvLike,
  type KeyvLike,
  Storage,
  StoreError,
} from './storage/storage.js';
