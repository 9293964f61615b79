/** @module Storage key layout (Caddy-like), in one place. */

/** Wildcards are stored as `wildcard_.example.com`, as Caddy does, so keys never hold a `*`. */
function nameSegment(name: string): string {
  return name.replace(/^\*\./, 'wildcard_.');
}

export const storageKeys = {
  /** One record per certificate (certificate, key and metadata together, so a write is atomic). */
  certificate: (issuerKey: string, name: string) => `certificates/${issuerKey}/${nameSegment(name)}`,
  certificatesPrefix: 'certificates/',
  account: (issuerKey: string, email: string) => `accounts/${issuerKey}/${email || 'default'}`,
  challenge: (token: string) => `challenges/${token}`,
  tlsAlpnChallenge: (name: string) => `challenges/tls-alpn-01/${nameSegment(name)}`,
  /** The CA's ARI window and the renewal time picked inside it, shared so every instance renews at the same time. */
  renewalInfo: (issuerKey: string, name: string) => `renewal_info/${issuerKey}/${nameSegment(name)}`,
  renewalInfoPrefix: 'renewal_info/',
  /** When storage was last cleaned (by any instance), so it happens at most daily. */
  lastClean: () => 'last_clean',
  localCA: () => 'authorities/local/root',
  /** The last attempt's outcome per name (status.ts), read by the CLI and every instance. */
  status: (name: string) => `status/${nameSegment(name)}`,
  statusPrefix: 'status/',
  /** A renewal asked for from outside the app (`autotls renew`), honoured by the next maintenance pass. */
  renewalRequest: (name: string) => `renewal_requests/${nameSegment(name)}`,
};

/** The name a key segment stands for (`wildcard_.example.com` → `*.example.com`). */
export function nameOfSegment(segment: string): string {
  return segment.replace(/^wildcard_\./, '*.');
}

/** Lock names, shared by every instance on the storage (Caddy calls the cleaning lock `storage_clean`). */
export const lockNames = {
  /** Held while obtaining or renewing the name's certificate. */
  certificate: (name: string) => `cert:${name}`,
  /** Held while refreshing the name's stored ARI window. */
  renewalInfo: (name: string) => `ari:${name}`,
  storageClean: 'storage_clean',
  /** Registering an account (and making its key): one instance at a time, so a cluster shares one. */
  account: (accountKey: string) => `account:${accountKey}`,
  /** Creating the local CA's root: one instance does, the others then read it (a root is trusted by hand). */
  localCA: 'local_ca_root',
};
