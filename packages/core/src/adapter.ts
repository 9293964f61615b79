/**
 * @module The adapter contract: what every framework adapter accepts and offers, and the one rule they share
 * — servers listen first, then the domains are managed. An adapter only translates its framework's request
 * and response to this object; no policy lives in an adapter.
 */
import type http from 'node:http';
import type https from 'node:https';
import type { CertManagerOptions } from './config.js';
import { CertManager } from './manager.js';
import { type AutoTlsServers, closeServer, type ListenOptions, listenHttpAndHttps } from './servers.js';
import type { HttpChallengeRequest, HttpChallengeResponse } from './solvers/http01.js';

/** What every framework adapter accepts besides the manager's own options. */
export interface AdapterOptions extends CertManagerOptions {
  /**
   * Use an existing manager instead of creating one from these options; its own `domains` are managed too.
   * The adapter then leaves it open when it closes.
   */
  manager?: CertManager;
  /** Redirect plain HTTP to HTTPS (default true). */
  redirect?: boolean;
}

/** The shape every adapter's `autoTls(...)` result has, whatever the framework. */
export interface AutoTls<App> {
  readonly manager: CertManager;
  httpsOptions(): https.ServerOptions;
  /** Starts the HTTPS and plain-HTTP servers for `app`, then manages the domains. */
  listen(app: App, options?: ListenOptions): Promise<AutoTlsServers>;
}

/** A request as an adapter sees it: the challenge fields plus whether it came over TLS. */
export type AdapterRequest = HttpChallengeRequest & { secure: boolean };

/**
 * The framework-agnostic half of an adapter: the manager (given or made), request answers with the
 * redirect settings, and `listen` → `manage`.
 * @example
 * const core = new AdapterCore(options);
 * const answer = await core.answer({ ...httpChallengeRequestOf(req), secure: req.secure });
 */
export class AdapterCore {
  readonly manager: CertManager;
  /** The manager was made here, so closing the adapter closes it. */
  readonly ownsManager: boolean;
  /** Port in redirect URLs; learnt when the HTTPS server listens. */
  httpsPort?: number;
  private readonly extraDomains: string[];

  constructor(private readonly options: AdapterOptions = {}) {
    this.ownsManager = !options.manager;
    this.manager = options.manager ?? new CertManager(options);
    // With a manager given, `domains` beside it are managed too (the manager validated its own already).
    this.extraDomains = options.manager ? (options.domains ?? []) : [];
  }

  /** Core's answer for a request (challenge, redirect); `undefined` means the app handles it. */
  answer(request: AdapterRequest): Promise<HttpChallengeResponse | undefined> {
    return this.manager.handleHttpRequest(request, {
      redirect: this.options.redirect,
      httpsPort: this.httpsPort,
    });
  }

  /** The one rule: call once the servers can answer the CA. */
  manageDomains(): Promise<void> {
    return this.manager.manage(this.extraDomains);
  }

  /**
   * Listens with both servers, then manages the domains. If anything fails, whatever was opened is closed
   * and the error (a one-line `ListenError` for a busy or privileged port) is thrown.
   */
  async listen(listener: http.RequestListener, options: ListenOptions = {}): Promise<AutoTlsServers> {
    this.httpsPort = options.httpsPort;
    const servers = await listenHttpAndHttps(this.manager, listener, options);
    this.httpsPort = servers.httpsPort;
    try {
      await this.manageDomains();
    } catch (error) {
      await Promise.all([closeServer(servers.http), closeServer(servers.https)]);
      throw error;
    }
    return {
      http: servers.http,
      https: servers.https,
      close: async () => {
        await Promise.all([closeServer(servers.http), closeServer(servers.https)]);
        if (this.ownsManager) await this.manager.close();
      },
    };
  }
}
