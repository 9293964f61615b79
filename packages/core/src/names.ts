/** @module Host name normalisation and validation, done before anything else touches a name. */
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';

export class InvalidNameError extends Error {
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`invalid host name ${JSON.stringify(input)}: ${reason}`);
    this.name = 'InvalidNameError';
  }
}

const LOOPBACK_IPS = new Set(['127.0.0.1', '::1']);
const MAX_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;
const label = /^(?!-)[a-z0-9_-]+(?<!-)$/;

/**
 * Lower case, IDN to punycode, trailing dot removed; a leftmost `*` label is kept for wildcards.
 * Throws `InvalidNameError` for IPs (but loopback), ports, paths, empty or overlong labels.
 * @example normalizeName('Bücher.Example.') // 'xn--bcher-kva.example'
 */
export function normalizeName(input: string): string {
  if (typeof input !== 'string' || input.length === 0) throw new InvalidNameError(String(input), 'empty');
  if (input.length > MAX_NAME_LENGTH + 1) throw new InvalidNameError(input, 'longer than 253 characters');
  const bracketless = input.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bracketless)) {
    if (LOOPBACK_IPS.has(bracketless)) return bracketless;
    throw new InvalidNameError(input, 'IP addresses are only supported for loopback (internal CA)');
  }
  if (/[/:?#@\s\\]/.test(input)) throw new InvalidNameError(input, 'a host name has no scheme, port or path');
  const withoutDot = input.endsWith('.') ? input.slice(0, -1) : input;
  const wildcard = withoutDot.startsWith('*.');
  const rest = wildcard ? withoutDot.slice(2) : withoutDot;
  if (rest.includes('*')) throw new InvalidNameError(input, 'a wildcard must be the whole leftmost label');
  const ascii = domainToASCII(rest);
  if (!ascii) throw new InvalidNameError(input, 'not a valid (internationalised) domain name');
  const labels = ascii.split('.');
  for (const part of labels) {
    if (part.length === 0) throw new InvalidNameError(input, 'empty label');
    if (part.length > MAX_LABEL_LENGTH) throw new InvalidNameError(input, 'label longer than 63 characters');
    if (!label.test(part)) throw new InvalidNameError(input, `label "${part}" has invalid characters`);
  }
  const name = (wildcard ? '*.' : '') + ascii;
  if (name.length > MAX_NAME_LENGTH) throw new InvalidNameError(input, 'longer than 253 characters');
  return name;
}

const internalSuffixes = ['.localhost', '.local', '.internal', '.home.arpa'];

/** Names no public CA will certify: Caddy serves them from its local CA, and so do we. */
export function isInternalName(name: string): boolean {
  return (
    name === 'localhost' || LOOPBACK_IPS.has(name) || internalSuffixes.some((suffix) => name.endsWith(suffix))
  );
}

/** The wildcard name that would cover `name` (`a.example.com` → `*.example.com`), if any. */
export function wildcardFor(name: string): string | undefined {
  const dot = name.indexOf('.');
  return dot > 0 && name.indexOf('.', dot + 1) > 0 ? `*${name.slice(dot)}` : undefined;
}
