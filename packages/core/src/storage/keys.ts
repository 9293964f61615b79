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
  localCA: () => 'authorities/local/root',
};
