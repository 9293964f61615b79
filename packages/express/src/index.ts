/** @module @autotls/express: automatic HTTPS for Express 5 — `app.use(autoTls({ domains, email }))`. */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import {
  CertManager,
  type CertManagerOptions,
  httpChallengeRequestOf,
  writeHttpResponse,
} from '@autotls/core';
import type { Express, NextFunction, Request, Response } from 'express';

export interface AutoTlsOptions extends CertManagerOptions {
  /** Use an existing manager instead of creating one from these options. */
  manager?: CertManager;
  /** Redirect plain HTTP to HTTPS (default true). */
  redirect?: boolean;
}

export interface ListenOptions {
  httpPort?: number;
  httpsPort?: number;
  host?: string;
}

export interface AutoTlsServers {
  http: http.Server;
  https: https.Server;
  /** Closes both servers and the manager. */
  close(): Promise<void>;
}

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
    httpsPort = listenOptions.httpsPort ?? 443;
    const secure = https.createServer(manager.httpsOptions(), app);
    manager.serveTlsAlpnChallenges(secure);
    const plain = http.createServer(app);
    try {
      await listen(secure, httpsPort, listenOptions.host);
      await listen(plain, listenOptions.httpPort ?? 80, listenOptions.host);
    } catch (error) {
      // A busy port must not leave the other server listening.
      await Promise.all([close(plain), close(secure)]);
      throw error;
    }
    httpsPort = (secure.address() as { port: number }).port;
    await manager.manage(options.domains ?? []);
    return {
      http: plain,
      https: secure,
      close: async () => {
        await Promise.all([close(plain), close(secure)]);
        await manager.close();
      },
    };
  };
  return middleware;
}

/** Open connections per server, so close() can drop them all (also TLS handshakes that never finish). */
const connections = new WeakMap<net.Server, Set<net.Socket>>();

function listen(server: http.Server | https.Server, port: number, host?: string): Promise<void> {
  const open = new Set<net.Socket>();
  connections.set(server, open);
  server.on('connection', (socket: net.Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function close(server: http.Server | https.Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const socket of connections.get(server) ?? []) socket.destroy();
  });
}
