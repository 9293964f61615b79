/**
 * @module The issuers used when none are configured: Let's Encrypt, then ZeroSSL with an email; or the one
 * ACME CA named by `AUTOTLS_ACME_CA` (Caddy's `acme_ca`), e.g. a private step-ca or a local Pebble.
 */
import { readFileSync } from 'node:fs';
import { ConfigurationError } from '../errors.js';
import { acme } from './acme.js';
import { letsEncrypt, zeroSSL } from './acme-cas.js';
import type { Issuer } from './issuer.js';

/**
 * `AUTOTLS_ACME_CA`: a directory URL replacing the default issuers. `AUTOTLS_ACME_CA_ROOT`: a PEM file
 * that CA's own HTTPS is trusted with (Caddy's `acme_ca_root`), when Node's roots do not cover it.
 */
export function defaultIssuers(email: string | undefined, env = process.env): Issuer[] {
  const directoryUrl = env.AUTOTLS_ACME_CA;
  if (!directoryUrl) return [letsEncrypt(), ...(email ? [zeroSSL()] : [])];
  if (!URL.canParse(directoryUrl)) {
    throw new ConfigurationError('AUTOTLS_ACME_CA', directoryUrl, 'must be an ACME directory URL');
  }
  const rootFile = env.AUTOTLS_ACME_CA_ROOT;
  return [acme({ directoryUrl, ...(rootFile ? { ca: readRoot(rootFile) } : {}) })];
}

function readRoot(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigurationError(
      'AUTOTLS_ACME_CA_ROOT',
      file,
      `must be a readable PEM file (${(error as Error).message})`,
    );
  }
}
