/** @module Presets for the public CAs: Let's Encrypt (with its staging CA) and ZeroSSL (with EAB fetched by email). */
import { NoRetryError } from '../errors.js';
import { type AcmeIssuer, acme } from './acme.js';
import {
  type AcmeIssuerOptions,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type ExternalAccountBinding,
} from './acme-options.js';

/** Let's Encrypt issues IP address certificates only under this profile. */
const LETS_ENCRYPT_IP_PROFILE = 'shortlived';

/**
 * Let's Encrypt; its staging CA serves as the test CA while retrying. IP addresses get the `shortlived`
 * profile (the only one Let's Encrypt issues them under) unless `profile` says otherwise.
 * @example letsEncrypt({ profile: 'tlsserver' })
 */
export function letsEncrypt(options: { staging?: boolean } & Partial<AcmeIssuerOptions> = {}): AcmeIssuer {
  const production = 'https://acme-v02.api.letsencrypt.org/directory';
  const staging = 'https://acme-staging-v02.api.letsencrypt.org/directory';
  return acme({
    ipProfile: LETS_ENCRYPT_IP_PROFILE,
    ...options,
    directoryUrl: options.staging ? staging : production,
    testDirectoryUrl: options.staging ? undefined : staging,
  });
}

/** ZeroSSL's EAB endpoint: hands out EAB credentials for an email address. */
export const ZEROSSL_EAB_URL = 'https://api.zerossl.com/acme/eab-credentials-email';

/** ZeroSSL; needs EAB: given, or fetched with the email from `eabUrl` when the account is created. */
export function zeroSSL(
  options: { eab?: ExternalAccountBinding; eabUrl?: string } & Partial<AcmeIssuerOptions> = {},
): AcmeIssuer {
  const { eabUrl = ZEROSSL_EAB_URL, ...rest } = options;
  return acme({
    ...rest,
    directoryUrl: options.directoryUrl ?? 'https://acme.zerossl.com/v2/DV90',
    eab: options.eab ?? ((email) => fetchZeroSslEab(eabUrl, email)),
  });
}

export async function fetchZeroSslEab(
  eabUrl: string,
  email: string | undefined,
): Promise<ExternalAccountBinding> {
  if (!email) throw new NoRetryError('ZeroSSL needs an email address (or explicit eab credentials)');
  const response = await fetch(eabUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ email }).toString(),
    signal: AbortSignal.timeout(DEFAULT_REQUEST_TIMEOUT_MS),
  });
  const body = (await response.json().catch(() => ({}))) as {
    success?: boolean;
    eab_kid?: string;
    eab_hmac_key?: string;
  };
  if (!response.ok || !body.eab_kid || !body.eab_hmac_key) {
    throw new Error(`ZeroSSL EAB endpoint ${eabUrl} answered HTTP ${response.status} without credentials`);
  }
  return { kid: body.eab_kid, hmacKey: body.eab_hmac_key };
}
