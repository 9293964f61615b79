/** @module The TLS server's certificate selection: the cache first; a managed name not in it is read from storage. */
import type tls from 'node:tls';
import type { CachedCertificate, CertificateCache } from './cache.js';

export type SNICallback = (
  servername: string,
  callback: (error: Error | null, context?: tls.SecureContext) => void,
) => void;

export interface SNISources {
  cache: CertificateCache;
  /** A managed name's certificate from storage (not loaded yet, or evicted); `undefined` for other names. */
  loadMissing(name: string): Promise<CachedCertificate | undefined>;
  /** The certificate's TLS context could not be built (its key does not match, say). */
  onUnusable(name: string, certificate: CachedCertificate, error: unknown): void;
}

export function createSNICallback({ cache, loadMissing, onUnusable }: SNISources): SNICallback {
  return (servername, callback) => {
    const name = servername.toLowerCase();
    const serve = (certificate: CachedCertificate | undefined) => {
      if (!certificate) return callback(new Error(`no certificate for ${JSON.stringify(servername)}`));
      let context: tls.SecureContext;
      try {
        context = certificate.secureContext;
      } catch (error) {
        onUnusable(name, certificate, error);
        return callback(error as Error);
      }
      callback(null, context);
    };
    const cached = cache.get(name);
    if (cached) return serve(cached);
    loadMissing(name).then(serve, (error: Error) => callback(error));
  };
}
