/**
 * @module Waiting until a DNS-01 TXT value is served by every authoritative server of its zone, so the CA
 * (which asks right after the challenge is answered) finds it: the most common DNS-01 failure otherwise.
 */
import { sleep } from '../clock.js';
import { formatServerAddress, parseServerAddress, type ServerAddress } from '../dns/exchange.js';
import { authoritativeServers, findZone, systemResolvers, txtValues } from '../dns/lookup.js';
import type { Logger } from '../log.js';

export interface DnsPropagationOptions {
  /**
   * `'host[:port]'` servers to check instead of the zone's authoritative servers (found by NS lookup through
   * the system's resolvers); they also answer the CNAME lookups. For split-horizon DNS, or tests.
   */
  nameservers?: string[];
  /** How long to wait for every server to show the value; default 120 000 ms (2 minutes). */
  timeoutMs?: number;
  /** First pause between checks, doubling up to `maxIntervalMs`; default 250 ms. */
  initialIntervalMs?: number;
  /** Default 4 000 ms. */
  maxIntervalMs?: number;
}

/**
 * Two minutes: primaries notify their secondaries within seconds; hosted DNS APIs publish within a minute
 * (lego's default is 60 s, cert-manager's checks run for minutes).
 */
export const DEFAULT_PROPAGATION_TIMEOUT_MS = 120_000;
const DEFAULT_INITIAL_INTERVAL_MS = 250;
const DEFAULT_MAX_INTERVAL_MS = 4_000;
/** One check per server must not hold up the poll: an unanswered query counts as "not yet". */
const CHECK_TIMEOUT_MS = 1_000;

export class DnsPropagationTimeoutError extends Error {
  constructor(
    readonly record: string,
    readonly missingAt: readonly string[],
    timeoutMs: number,
  ) {
    super(
      `DNS-01 TXT value for ${record} was not visible at ${missingAt.join(', ')} after ${timeoutMs / 1000} s ` +
        '(the DNS provider accepted it, but the zone does not serve it yet)',
    );
    this.name = 'DnsPropagationTimeoutError';
  }
}

/** The servers to ask: the user's, else those the system's resolvers name for the zone. */
export async function propagationServers(
  record: string,
  options: DnsPropagationOptions,
): Promise<ServerAddress[]> {
  if (options.nameservers?.length) return options.nameservers.map(parseServerAddress);
  const resolvers = systemResolvers();
  const zone = await findZone(record, resolvers);
  if (zone === undefined)
    throw new Error(`DNS-01: no zone (SOA) found for ${record} through the system's resolvers`);
  const servers = await authoritativeServers(zone, resolvers);
  if (servers.length === 0) throw new Error(`DNS-01: the zone ${zone} has no name servers with addresses`);
  return servers;
}

/**
 * Resolves once `value` is among the TXT values of `record` at every server, polling with backoff;
 * throws a {@link DnsPropagationTimeoutError} naming the servers still without it.
 */
export async function waitForTxt(
  record: string,
  value: string,
  servers: readonly ServerAddress[],
  options: DnsPropagationOptions & { logger: Logger; signal?: AbortSignal },
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROPAGATION_TIMEOUT_MS;
  const maxIntervalMs = options.maxIntervalMs ?? DEFAULT_MAX_INTERVAL_MS;
  let intervalMs = options.initialIntervalMs ?? DEFAULT_INITIAL_INTERVAL_MS;
  const started = performance.now();
  let missing = [...servers];
  let logged = false;
  for (;;) {
    options.signal?.throwIfAborted();
    const seen = await Promise.all(
      missing.map((server) =>
        txtValues(server, record, { recursionDesired: false, timeoutMs: CHECK_TIMEOUT_MS }).then(
          (values) => values.includes(value),
          () => false,
        ),
      ),
    );
    missing = missing.filter((_, index) => !seen[index]);
    const fields = { record, nameservers: servers.map(formatServerAddress) };
    if (missing.length === 0) {
      if (logged) {
        const elapsed = (performance.now() - started) / 1000;
        options.logger.info({ ...fields, elapsed }, 'DNS-01 record visible at every name server');
      }
      return;
    }
    const elapsedMs = performance.now() - started;
    if (elapsedMs >= timeoutMs)
      throw new DnsPropagationTimeoutError(record, missing.map(formatServerAddress), timeoutMs);
    if (!logged) {
      options.logger.info(
        { ...fields, waiting_for: missing.map(formatServerAddress), timeout: timeoutMs / 1000 },
        'waiting for DNS-01 record to propagate',
      );
      logged = true;
    }
    await sleep(Math.min(intervalMs, timeoutMs - elapsedMs), options.signal);
    intervalMs = Math.min(intervalMs * 2, maxIntervalMs);
  }
}
