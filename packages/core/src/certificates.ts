/** @module Certificate and key helpers on node:crypto: key generation, PEM parsing, certificate facts. */
import { generateKeyPair, generateKeyPairSync, X509Certificate } from 'node:crypto';
import type { KeyType } from './issuers/issuer.js';

/** What `getCertificate(name)` reports, and what storage keeps beside the PEM. */
export interface CertificateInfo {
  names: string[];
  notBefore: number;
  notAfter: number;
  /** The issuer's distinguished name. */
  issuer: string;
  serialNumber: string;
}

export function generatePrivateKeyPem(keyType: KeyType): string {
  const pem = (type: 'ec' | 'rsa', options: object) =>
    generateKeyPairSync(type as 'ec', {
      ...(options as { namedCurve: string }),
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    }).privateKey;
  switch (keyType) {
    case 'ecdsa-p256':
      return pem('ec', { namedCurve: 'P-256' });
    case 'ecdsa-p384':
      return pem('ec', { namedCurve: 'P-384' });
    case 'rsa-2048':
      return pem('rsa', { modulusLength: 2048 });
    case 'rsa-4096':
      return pem('rsa', { modulusLength: 4096 });
  }
}

/** Like `generatePrivateKeyPem`, in the thread pool: RSA keys take long enough to stall the event loop. */
export function generatePrivateKey(keyType: KeyType): Promise<string> {
  const encoding = {
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  } as const;
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, _publicKey: string, privateKey: string) =>
      error ? reject(error) : resolve(privateKey);
    if (keyType.startsWith('ecdsa')) {
      generateKeyPair('ec', { namedCurve: keyType === 'ecdsa-p384' ? 'P-384' : 'P-256', ...encoding }, done);
    } else {
      generateKeyPair('rsa', { modulusLength: keyType === 'rsa-4096' ? 4096 : 2048, ...encoding }, done);
    }
  });
}

const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM chain, leaf first. */
export function splitPemChain(chainPem: string): string[] {
  return chainPem.match(pemBlock) ?? [];
}

/** Parses the leaf of a PEM chain; throws a clear error on anything that is not a certificate. */
export function readCertificateInfo(chainPem: string): CertificateInfo {
  const leafPem = splitPemChain(chainPem)[0];
  if (!leafPem) throw new Error('no PEM certificate found');
  const leaf = new X509Certificate(leafPem);
  const names = (leaf.subjectAltName ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('DNS:') || entry.startsWith('IP Address:'))
    .map((entry) => canonicalName(entry.slice(entry.indexOf(':') + 1).toLowerCase()));
  return {
    names,
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
    issuer: leaf.issuer.replace(/\n/g, ', '),
    serialNumber: leaf.serialNumber.toLowerCase(),
  };
}

/** Node prints IPv6 SANs in full (`0:0:0:0:0:0:0:1`); names elsewhere use the short form (`::1`). */
function canonicalName(name: string): string {
  return name.includes(':') ? new URL(`http://[${name}]/`).hostname.slice(1, -1) : name;
}
