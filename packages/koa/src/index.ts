/** @module @autotls/koa: automatic HTTPS for Koa 3 — `app.use(autoTls({ domains, email }))`. */
import type https from 'node:https';
import {
  type AdapterOptions,
  type AutoTlsServers,
  CertManager,
  httpChallengeRequestOf,
  type ListenOptions,
  listenHttpAndHttps,
} from '@autotls/core';
import type Koa from 'koa';

export type { AutoTlsServers, ListenOptions } from '@autotls/core';

export type AutoTlsOptions = AdapterOptions;

export interface AutoTlsMiddleware {
  (ctx: Koa.Context, next: Koa.Next): Promise<void>;
  manager: CertManager;
  httpsOptions(): https.ServerOptions;
  /** Starts the HTTPS and plain-HTTP servers for `app`, then manages `options.domains`. */
  listen(app: Koa, options?: ListenOptions): Promise<AutoTlsServers>;
}

/**
 * Koa middleware: answers ACME HTTP-01 challenges and redirects plain HTTP to HTTPS; everything else goes
 * on to `next()`. Put it first, so challenges are answered before any other middleware runs.
 * @example
 * const tls = autoTls({ domains: ['example.com'], email: 'me@example.com' });
 * app.use(tls);
 * await tls.listen(app, { httpPort: 80, httpsPort: 443 });
 */
export function autoTls(options: AutoTlsOptions = {}): AutoTlsMiddleware {
  const manager = options.manager ?? new CertManager(options);
  let httpsPort: number | undefined;

  const middleware = (async (ctx: Koa.Context, next: Koa.Next) => {
    // `ctx.secure` follows Koa's own rules: the socket's encryption, or X-Forwarded-Proto when `app.proxy`.
    const request = { ...httpChallengeRequestOf(ctx.req), url: ctx.originalUrl, secure: ctx.secure };
    const answer = await manager.handleHttpRequest(request, { redirect: options.redirect, httpsPort });
    if (!answer) return next();
    ctx.status = answer.status;
    ctx.set(answer.headers);
    ctx.body = answer.body;
  }) as AutoTlsMiddleware;

  middleware.manager = manager;
  middleware.httpsOptions = () => manager.httpsOptions();
  middleware.listen = async (app, listenOptions = {}) => {
    httpsPort = listenOptions.httpsPort;
    const servers = await listenHttpAndHttps(manager, app.callback(), listenOptions);
    httpsPort = servers.httpsPort;
    await manager.manage(options.domains ?? []);
    return { http: servers.http, https: servers.https, close: servers.close };
  };
  return middleware;
}
