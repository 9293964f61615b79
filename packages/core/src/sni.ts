/** @module The TLS server's certificate selection: cache lookups only, never the network on the hot path. */
import type tls from 'node:tls';
import type { CertificateCache } from './cache.js';

export type SNICallback = (
  servername: string,
  callback: (error: Error | null, context?: tls.SecureContext) => void,
) => void;

export function createSNICallback(cache: CertificateCache): SNICallback {
  return (servername, callback) => {
    const certificate = cache.get(servername.toLowerCase());
    if (certificate) callback(null, certificate.secureContext);
    else callback(new Error(`no certificate for ${JSON.stringify(servername)}`));
  };
}
