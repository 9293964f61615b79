/** @module The RFC 2136 DNS provider: TXT records by dynamic update with TSIG (BIND, Knot, PowerDNS …). */
import type { Clock } from '../clock.js';
import { parseServerAddress, type ServerAddress } from '../dns/exchange.js';
import { findZone } from '../dns/lookup.js';
import { type TsigKey, tsigAlgorithm } from '../dns/tsig.js';
import { sendUpdate } from '../dns/update.js';
import { canonicalName, RR_CLASS, RR_TYPE, txtData } from '../dns/wire.js';
import { ConfigurationError } from '../errors.js';
import type { DnsProvider } from './dns01.js';

export interface Rfc2136Options {
  /** The primary server that accepts updates: `'host'` or `'host:port'` (default port 53). */
  server: string;
  /** The TSIG key's name as the server knows it (BIND: `key "<name>" { … }`). */
  keyName: string;
  /** The key's secret, base64, as in BIND's key file or `tsig-keygen`'s output. */
  keySecret: string;
  /** `hmac-sha256` (default), `hmac-sha384` or `hmac-sha512`; `hmac-md5` is refused. */
  keyAlgorithm?: string;
  /** The zone to update; default: found by asking `server` for the record's SOA. */
  zone?: string;
  /** TTL of the TXT records, seconds; default 60 (short: a stale value must not outlive the challenge). */
  ttl?: number;
  /** How long one request waits for the server; default 2 000 ms per try. */
  timeoutMs?: number;
  /** Time for TSIG signatures (the server checks it within 300 s); default the system clock. */
  clock?: Clock;
}

const DEFAULT_TTL_SECONDS = 60;

/**
 * A DNS provider that adds and deletes exactly one TXT value per challenge by RFC 2136 dynamic update
 * signed with TSIG (RFC 8945). Two orders can hold values at one name at once: cleanup deletes its own
 * value only, never the record set.
 * @example
 * new CertManager({
 *   domains: ['*.example.com', 'example.com'],
 *   challenges: {
 *     dns01: rfc2136({ server: 'ns1.example.com', keyName: 'acme', keySecret: process.env.TSIG_SECRET! }),
 *   },
 * });
 */
export function rfc2136(options: Rfc2136Options): DnsProvider {
  const server = serverOption(options.server);
  const key = keyOption(options);
  const ttl = options.ttl ?? DEFAULT_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > 2 ** 31 - 1) {
    throw new ConfigurationError('rfc2136.ttl', options.ttl, 'must be a whole number of seconds');
  }
  const now = () => (options.clock ?? Date).now() / 1000;
  const zones = new Map<string, string>();
  const exchangeOptions = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };

  const zoneOf = async (fqdn: string): Promise<string> => {
    if (options.zone !== undefined) {
      const zone = canonicalName(options.zone);
      if (fqdn !== zone && !fqdn.endsWith(`.${zone}`)) {
        throw new Error(`rfc2136: ${fqdn} is not inside the zone ${zone} given as rfc2136.zone`);
      }
      return zone;
    }
    const known = zones.get(fqdn);
    if (known !== undefined) return known;
    const zone = await findZone(fqdn, [server], exchangeOptions);
    if (zone === undefined) {
      throw new Error(`rfc2136: ${options.server} answers no SOA for ${fqdn}: give the zone as rfc2136.zone`);
    }
    zones.set(fqdn, zone);
    return zone;
  };

  const update = async (fqdn: string, value: string, adding: boolean) => {
    const name = canonicalName(fqdn);
    const record = adding
      ? { name, type: RR_TYPE.TXT, class: RR_CLASS.IN, ttl, data: txtData(value) }
      : // Class NONE with the value: delete this one record, leave the others (RFC 2136 §2.5.4).
        { name, type: RR_TYPE.TXT, class: RR_CLASS.NONE, ttl: 0, data: txtData(value) };
    await sendUpdate({
      server,
      zone: await zoneOf(name),
      key,
      updates: [record],
      nowSeconds: now(),
      ...exchangeOptions,
    });
  };

  return {
    present: (fqdn, value) => update(fqdn, value, true),
    cleanup: (fqdn, value) => update(fqdn, value, false),
  };
}

function serverOption(value: unknown): ServerAddress {
  if (typeof value !== 'string' || value === '') {
    throw new ConfigurationError('rfc2136.server', value, "must be 'host' or 'host:port'");
  }
  try {
    return parseServerAddress(value);
  } catch {
    throw new ConfigurationError('rfc2136.server', value, "must be 'host' or 'host:port'");
  }
}

function keyOption(options: Rfc2136Options): TsigKey {
  if (typeof options.keyName !== 'string' || canonicalName(options.keyName) === '') {
    throw new ConfigurationError('rfc2136.keyName', options.keyName, 'must be the TSIG key name');
  }
  const secret = typeof options.keySecret === 'string' ? options.keySecret.replace(/\s/g, '') : '';
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(secret)) {
    throw new ConfigurationError(
      'rfc2136.keySecret',
      '(hidden)',
      'must be the base64 secret from the key file',
    );
  }
  const algorithm = tsigAlgorithm(String(options.keyAlgorithm ?? 'hmac-sha256'));
  if (!algorithm) {
    throw new ConfigurationError(
      'rfc2136.keyAlgorithm',
      options.keyAlgorithm,
      'must be hmac-sha256, hmac-sha384 or hmac-sha512 (hmac-md5 is broken and refused, RFC 8945 §6)',
    );
  }
  return { name: canonicalName(options.keyName), algorithm, secret: Buffer.from(secret, 'base64') };
}
