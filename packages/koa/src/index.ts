/** @module @autotls/koa: automatic HTTPS for Koa 3 — `app.use(autoTls({ domains, email }))`. */
import {
  AdapterCore,
  type AdapterOptions,
  type AutoTls,
  httpChallengeRequestOf,
  type ListenOptions,
} from '@autotls/core';
import type Koa from 'koa';

export type { AutoTlsServers, ListenOptions } from '@autotls/core';

export type AutoTlsOptions = AdapterOptions;

/** The middleware, carrying the adapter contract (`manager`, `httpsOptions()`, `listen()`). */
export interface AutoTlsMiddleware extends AutoTls<Koa> {
  (ctx: Koa.Context, next: Koa.Next): Promise<void>;
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
  const core = new AdapterCore(options);
  const middleware = async (ctx: Koa.Context, next: Koa.Next) => {
    // `ctx.secure` follows Koa's own rules: the socket's encryption, or X-Forwarded-Proto when `app.proxy`.
    const answer = await core.answer({
      ...httpChallengeRequestOf(ctx.req),
      url: ctx.originalUrl,
      secure: ctx.secure,
    });
    if (!answer) return next();
    ctx.status = answer.status;
    ctx.set(answer.headers);
    ctx.body = answer.body;
  };
  return Object.assign(middleware, {
    manager: core.manager,
    httpsOptions: () => core.manager.httpsOptions(),
    listen: (app: Koa, listenOptions?: ListenOptions) => core.listen(app.callback(), listenOptions),
  });
}
