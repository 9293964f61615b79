/**
 * @module Entries that cannot be used as they are. A corrupt or unusable record is moved aside under
 * `corrupt/<key>.<time>` before a new certificate replaces it (someone may want to look at it); a
 * certificate and key stored in another shape (hand-written, another tool's) are found and adopted.
 */
import type { Storage } from './storage.js';

export const CORRUPT_PREFIX = 'corrupt/';

/** `corrupt/<key>.<ISO time, lower case, - for : and .>`: sorts by time, a plain file name everywhere. */
export function setAsideKey(key: string, nowMs: number): string {
  return `${CORRUPT_PREFIX}${key}.${new Date(nowMs).toISOString().replace(/[:.]/g, '-').toLowerCase()}`;
}

/**
 * Moves the entry at `key` (its value, or its raw text when it could not be parsed) to a `corrupt/` key and
 * resolves with that key. Call it under the entry's lock: nobody else may write `key` meanwhile.
 * @example const movedTo = await setAside(storage, 'certificates/ca/example.com', { raw }, Date.now());
 */
export async function setAside(
  storage: Storage,
  key: string,
  value: unknown,
  nowMs: number,
): Promise<string> {
  const target = setAsideKey(key, nowMs);
  await storage.set(target, value);
  await storage.delete(key);
  return target;
}

const CERTIFICATE_PEM = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g;
const PRIVATE_KEY_PEM =
  /-----BEGIN (EC |RSA |ENCRYPTED )?PRIVATE KEY-----[A-Za-z0-9+/=\s]+?-----END \1?PRIVATE KEY-----/;
/** Deep enough for any record shape we have seen; a bound so a hostile value cannot recurse forever. */
const MAX_DEPTH = 4;

/**
 * A PEM certificate chain and a private key found anywhere in `value` (a PEM text, an object with other
 * field names, nested objects); `undefined` when either is missing. The caller still checks they match.
 */
export function findCertificateAndKey(
  value: unknown,
): { certificatePem: string; privateKeyPem: string } | undefined {
  const texts: string[] = [];
  collectStrings(value, texts, 0);
  const chain = texts.map((text) => text.match(CERTIFICATE_PEM)).find((found) => found !== null);
  const key = texts.map((text) => PRIVATE_KEY_PEM.exec(text)?.[0]).find((found) => found !== undefined);
  if (!chain || !key) return undefined;
  return { certificatePem: `${chain.join('\n')}\n`, privateKeyPem: `${key}\n` };
}

function collectStrings(value: unknown, into: string[], depth: number): void {
  if (typeof value === 'string') into.push(value);
  else if (value && typeof value === 'object' && depth < MAX_DEPTH) {
    for (const item of Object.values(value)) collectStrings(item, into, depth + 1);
  }
}
