/** @module @autotls/express: automatic HTTPS for Express 5 — `app.use(autoTls({ domains, email }))`. */
import {
  AdapterCore,
  type AdapterOptions,
  type AutoTls,
  httpChallengeRequestOf,
  type ListenOptions,
  writeHttpResponse,
} from '@autotls/core';
import type { Express, NextFunction, Request, Response } from 'express';

export type AutoTlsOptions = AdapterOptions;

export type { AutoTlsServers, ListenOptions } from '@autotls/core';

/** The middleware, carrying the adapter contract (`manager`, `httpsOptions()`, `listen()`). */
export interface AutoTlsMiddleware extends AutoTls<Express> {
  (req: Request, res: Response, next: NextFunction): void;
}

/**
 * Express middleware: answers ACME HTTP-01 challenges and redirects plain HTTP to HTTPS.
 * @example
 * const tls = autoTls({ domains: ['example.com'], email: 'me@example.com' });
 * app.use(tls);
 * await tls.listen(app, { httpPort: 80, httpsPort: 443 });
 */
export function autoTls(options: AutoTlsOptions = {}): AutoTlsMiddleware {
  const core = new AdapterCore(options);
  const middleware = (req: Request, res: Response, next: NextFunction) => {
    const request = { ...httpChallengeRequestOf(req), url: req.originalUrl, secure: req.secure };
    core.answer(request).then((response) => (response ? writeHttpResponse(res, response) : next()), next);
  };
  return Object.assign(middleware, {
    manager: core.manager,
    httpsOptions: () => core.manager.httpsOptions(),
    listen: (app: Express, listenOptions?: ListenOptions) => core.listen(app, listenOptions),
  });
}
