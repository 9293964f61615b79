/** @module In-memory certificate cache: name → ready-to-serve certificate, exact match then wildcard. */
import tls from 'node:tls';
import type { CertificateInfo } from './certificates.js';
import { wildcardFor } from './names.js';

export interface CachedCertificate {
  info: CertificateInfo;
  /** Which issuer's storage entry it came from. */
  issuerKey: string;
  certificatePem: string;
  privateKeyPem: string;
  /** Built once; every handshake for these names reuses it. */
  secureContext: tls.SecureContext;
}

/** Caddy's default capacity; an entry costs a few KB until its TLS context is built. Evicted names reload on their next handshake. */
export const DEFAULT_CACHE_CAPACITY = 10_000;

export class CertificateCache {
  private readonly byName = new Map<string, CachedCertificate>();

  constructor(private readonly capacity = DEFAULT_CACHE_CAPACITY) {}

  /**
   * An entry whose TLS context is built on first use, then kept: building one costs ~1.6 ms of CPU, which
   * for 10,000 stored names would delay the first handshake by seconds. Reading `secureContext` throws if
   * the key does not match the certificate.
   */
  static entry(input: Omit<CachedCertificate, 'secureContext'>): CachedCertificate {
    let secureContext: tls.SecureContext | undefined;
    return {
      ...input,
      get secureContext() {
        secureContext ??= tls.createSecureContext({ cert: input.certificatePem, key: input.privateKeyPem });
        return secureContext;
      },
    };
  }

  set(certificate: CachedCertificate): void {
    for (const name of certificate.info.names) {
      this.byName.delete(name);
      this.byName.set(name, certificate);
    }
    // Oldest first out: Map iteration follows insertion order.
    for (const name of this.byName.keys()) {
      if (this.byName.size <= this.capacity) break;
      this.byName.delete(name);
    }
  }

  /** The certificate for an exact name, else for the wildcard covering it. */
  get(name: string): CachedCertificate | undefined {
    const exact = this.byName.get(name);
    if (exact) return exact;
    const wildcard = wildcardFor(name);
    return wildcard ? this.byName.get(wildcard) : undefined;
  }

  delete(name: string): void {
    this.byName.delete(name);
  }

  get size(): number {
    return this.byName.size;
  }

  /** How many more names fit without evicting one. */
  get room(): number {
    return Math.max(0, this.capacity - this.byName.size);
  }
}

/** A stored certificate replaces the cached one (another instance renewed it) when it is a different, longer-lived certificate. */
export function supersedes(stored: CachedCertificate, cached: CachedCertificate | undefined): boolean {
  if (!cached) return true;
  return (
    stored.info.serialNumber !== cached.info.serialNumber && stored.info.notAfter >= cached.info.notAfter
  );
}
