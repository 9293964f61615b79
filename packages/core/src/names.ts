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
 * Lower case, IDN to punycode, trailing dot removed; a leftmost `*` label is kept for wildcards. IP addresses
 * (RFC 8738) come out in their canonical text: IPv6 compressed and lower case (RFC 5952), brackets dropped.
 * Throws `InvalidNameError` for ports, paths, empty or overlong labels.
 * @example normalizeName('Bücher.Example.') // 'xn--bcher-kva.example'
 * @example normalizeName('[2001:DB8:0::10]') // '2001:db8::10'
 */
export function normalizeName(input: string): string {
  if (typeof input !== 'string' || input.length === 0) throw new InvalidNameError(String(input), 'empty');
  if (input.length > MAX_NAME_LENGTH + 1) throw new InvalidNameError(input, 'longer than 253 characters');
  const bracketless = input.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bracketless)) return canonicalIp(bracketless);
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

/** RFC 5952 text for IPv6 (what the URL parser prints), dotted quad for IPv4. */
function canonicalIp(address: string): string {
  if (isIP(address) === 4) return address;
  const zoneless = address.split('%')[0] ?? address;
  return new URL(`http://[${zoneless}]/`).hostname.slice(1, -1);
}

/** Whether a normalised name is an IP address (an RFC 8738 `ip` identifier). */
export function isIpAddress(name: string): boolean {
  return isIP(name) !== 0;
}

/**
 * The reverse-DNS name of an IP address, which an ACME CA sends as SNI for TLS-ALPN-01 (RFC 8738 §6).
 * @example reverseDnsName('192.0.2.10') // '10.2.0.192.in-addr.arpa'
 * @example reverseDnsName('2001:db8::10') // '0.1.0.0.…8.b.d.0.1.0.0.2.ip6.arpa'
 */
export function reverseDnsName(address: string): string {
  if (isIP(address) === 4) return `${address.split('.').reverse().join('.')}.in-addr.arpa`;
  const groups = canonicalIp(address).split(':');
  const missing = 8 - groups.filter((group) => group !== '').length;
  const full = groups.flatMap((group, index) => {
    if (group !== '') return [group.padStart(4, '0')];
    // '::' leaves one empty group (two at either end); only the first stands for the zero groups.
    return groups.indexOf('') === index ? Array(missing).fill('0000') : [];
  });
  return `${[...full.join('')].reverse().join('.')}.ip6.arpa`;
}

const internalSuffixes = ['.localhost', '.local', '.internal', '.home.arpa'];

/**
 * Names no public CA will certify: Caddy serves them from its local CA, and so do we. Of IP addresses only
 * loopback: any other one may be certified over ACME (RFC 8738), by a public CA or a private one.
 */
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
