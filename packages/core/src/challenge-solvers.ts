/**
 * @module The challenge solvers a manager offers its issuers, from its configuration: HTTP-01 (answered
 * through the adapters), TLS-ALPN-01 (enabled once an HTTPS server is attached) and DNS-01 (a provider).
 */
import cluster from 'node:cluster';
import type tls from 'node:tls';
import type { ManagerConfig } from './config.js';
import type { ChallengeSolver } from './issuers/issuer.js';
import type { Logger } from './log.js';
import { Dns01Solver } from './solvers/dns01.js';
import { Http01Solver } from './solvers/http01.js';
import { TlsAlpn01Solver } from './solvers/tls-alpn-01.js';
import type { Storage } from './storage/storage.js';

export class ChallengeSolvers {
  readonly http01: Http01Solver;
  /** By challenge type, as issuers look them up; TLS-ALPN-01 joins when a server is attached. */
  readonly byType = new Map<string, ChallengeSolver>();
  private readonly tlsAlpn01: TlsAlpn01Solver;

  constructor(
    private readonly config: ManagerConfig,
    storage: Storage,
    logger: Logger,
  ) {
    this.http01 = new Http01Solver(storage, logger.child({ logger: 'http' }));
    // Another instance's TLS-ALPN challenge can reach this one when storage is shared (a Keyv given, e.g.
    // Redis) or the port is (node:cluster workers).
    const maybeClustered = storage.directory === undefined || cluster.isWorker;
    this.tlsAlpn01 = new TlsAlpn01Solver(storage, logger.child({ logger: 'tls' }), maybeClustered);
    const { http01, dns01, dnsPropagation } = config.challenges;
    if (http01) this.byType.set('http-01', this.http01);
    if (dns01) {
      const propagation = dnsPropagation ?? {};
      this.byType.set(
        'dns-01',
        new Dns01Solver(dns01, { logger: logger.child({ logger: 'dns' }), propagation }),
      );
    }
  }

  /** Answers TLS-ALPN-01 challenges on `server` (when enabled), which makes the challenge type usable. */
  attach(server: tls.Server): void {
    if (!this.config.challenges.tlsAlpn01) return;
    this.tlsAlpn01.attach(server);
    this.byType.set('tls-alpn-01', this.tlsAlpn01);
  }
}
