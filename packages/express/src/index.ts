/** @module @autotls/express: automatic HTTPS for Express 5 — `app.use(autoTls({ domains, email }))`. */
import type https from 'node:https';
import {
  type AdapterOptions,
  type AutoTlsServers,
  CertManager,
  httpChallengeRequestOf,
  type ListenOptions,
  listenHttpAndHttps,
  writeHttpResponse,
} from '@autotls/core';
import type { Express, NextFunction, Request, Response } from 'express';

export type AutoTlsOptions = AdapterOptions;

export type { AutoTlsServers, ListenOptions } from '@autotls/core';

export interface AutoTlsMiddleware {
  (req: Request, res: Response, next: NextFunction): void;
  manager: CertManager;
  httpsOptions(): https.ServerOptions;
  /** Starts the HTTPS and plain-HTTP servers, then manages `options.domains`. */
  listen(app: Express, options?: ListenOptions): Promise<AutoTlsServers>;
}

/**
 * Express middleware: answers ACME HTTP-01 challenges and redirects plain HTTP to HTTPS.
 * @example
 * const tls = autoTls({ domains: ['example.com'], email: 'me@example.com' });
 * app.use(tls);
 * await tls.listen(app, { httpPort: 80, httpsPort: 443 });
 */
export function autoTls(options: AutoTlsOptions = {}): AutoTlsMiddleware {
  const manager = options.manager ?? new CertManager(options);
  let httpsPort: number | undefined;

  const middleware = ((req: Request, res: Response, next: NextFunction) => {
    const request = { ...httpChallengeRequestOf(req), url: req.originalUrl, secure: req.secure };
    manager
      .handleHttpRequest(request, { redirect: options.redirect, httpsPort })
      .then((response) => (response ? writeHttpResponse(res, response) : next()), next);
  }) as AutoTlsMiddleware;

  middleware.manager = manager;
  middleware.httpsOptions = () => manager.httpsOptions();
  middleware.listen = async (app, listenOptions = {}) => {
    httpsPort = listenOptions.httpsPort;
    const servers = await listenHttpAndHttps(manager, app, listenOptions);
    httpsPort = servers.httpsPort;
    await manager.manage(options.domains ?? []);
    return { http: servers.http, https: servers.https, close: servers.close };
  };
  return middleware;
}
