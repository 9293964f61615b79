/** @module test/support — the harness for tests against real parts (Pebble, challtestsrv, Redis, a fault proxy). */
import {
  type ChallTestSrv,
  type Pebble,
  randomEabKey,
  type StartPebbleOptions,
  startChallTestSrv,
  startPebble,
} from './pebble.js';

export * from './fault-proxy.js';
export * from './http.js';
export * from './pebble.js';
export * from './ports.js';
export * from './processes.js';
export * from './redis.js';
export * from './tls.js';

export interface StartCAsOptions<Name extends string> {
  /** One Pebble per name, e.g. ['production', 'staging', 'zerossl']. */
  names: readonly Name[];
  /** HTTP-01 validation port shared by all of them (where the server under test listens). */
  httpPort: number;
  /** TLS-ALPN-01 validation port shared by all of them. */
  tlsPort?: number;
  /** These require EAB; each gets one key id `${name}-kid` with a random key (see pebble.eab). */
  eabFor?: readonly Name[];
  /** Options applied to every Pebble (e.g. nonceRejectPercent). */
  common?: Partial<Omit<StartPebbleOptions, 'dnsServer' | 'httpPort' | 'tlsPort'>>;
  /** Per-name overrides, applied after `common`. */
  overrides?: Partial<Record<Name, Partial<Omit<StartPebbleOptions, 'dnsServer'>>>>;
}

export interface StartedCAs<Name extends string> {
  /** The DNS server all Pebbles use. */
  challtestsrv: ChallTestSrv;
  pebbles: Record<Name, Pebble>;
  /** Stop every Pebble and the challtestsrv. */
  stopAll(): Promise<void>;
}

/** One challtestsrv plus several Pebbles (started in parallel) that share it. */
export async function startCAs<const Name extends string>(
  options: StartCAsOptions<Name>,
): Promise<StartedCAs<Name>> {
  const challtestsrv = await startChallTestSrv();
  const results = await Promise.allSettled(
    options.names.map((name) =>
      startPebble({
        name: `pebble(${name})`,
        dnsServer: challtestsrv.dnsAddress,
        httpPort: options.httpPort,
        ...(options.tlsPort === undefined ? {} : { tlsPort: options.tlsPort }),
        ...(options.eabFor?.includes(name) ? { eab: { [`${name}-kid`]: randomEabKey() } } : {}),
        ...options.common,
        ...options.overrides?.[name],
      }),
    ),
  );
  const failed = results.find((result) => result.status === 'rejected');
  if (failed !== undefined) {
    // Stop the ones that did start (all starts have settled, so nothing is left behind).
    await Promise.all(
      results.map((result) => (result.status === 'fulfilled' ? result.value.stop() : undefined)),
    );
    await challtestsrv.stop();
    throw failed.reason;
  }
  const pebbles = Object.fromEntries(
    options.names.map((name, index) => [name, (results[index] as PromiseFulfilledResult<Pebble>).value]),
  ) as Record<Name, Pebble>;
  return {
    challtestsrv,
    pebbles,
    async stopAll() {
      await Promise.all(Object.values<Pebble>(pebbles).map((pebble) => pebble.stop()));
      await challtestsrv.stop();
    },
  };
}
