/** @module The HTTPS + plain-HTTP server pair an adapter's `listen()` starts (proposed for @autotls/core). */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { CertManager } from '@autotls/core';

export interface ListenOptions {
  /** Plain-HTTP port: HTTP-01 answers and redirects (default 80). */
  httpPort?: number;
  /** HTTPS port (default 443). */
  httpsPort?: number;
  host?: string;
}

export interface AutoTlsServers {
  http: http.Server;
  https: https.Server;
  /** Closes both servers (dropping open connections) and the manager. */
  close(): Promise<void>;
}

/**
 * Starts an HTTPS server with the manager's certificates (and TLS-ALPN-01 answers) and a plain-HTTP
 * server, both for `listener`. If either cannot listen, both are closed and the error is thrown.
 * @example
 * const servers = await listenHttpAndHttps(manager, app.callback(), { httpPort: 80, httpsPort: 443 });
 */
export async function listenHttpAndHttps(
  manager: CertManager,
  listener: http.RequestListener,
  options: ListenOptions = {},
): Promise<AutoTlsServers & { httpsPort: number }> {
  const secure = https.createServer(manager.httpsOptions(), listener);
  manager.serveTlsAlpnChallenges(secure);
  const plain = http.createServer(listener);
  const close = () => Promise.all([closeServer(plain), closeServer(secure)]);
  try {
    const httpsPort = await listenServer(secure, options.httpsPort ?? 443, options.host);
    await listenServer(plain, options.httpPort ?? 80, options.host);
    return {
      http: plain,
      https: secure,
      httpsPort,
      close: async () => {
        await close();
        await manager.close();
      },
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Every open connection of a server started by `listenServer`, for `closeServer` to drop. */
const connections = new WeakMap<net.Server, Set<net.Socket>>();

/**
 * Listens on `port` (0: any free port) and resolves with the bound port; rejects on a listen error.
 * @example
 * const port = await listenServer(http.createServer(handler), 0, '127.0.0.1');
 */
export function listenServer(server: net.Server, port: number, host?: string): Promise<number> {
  if (!connections.has(server)) {
    const open = new Set<net.Socket>();
    connections.set(server, open);
    server.on('connection', (socket: net.Socket) => {
      open.add(socket);
      socket.once('close', () => open.delete(socket));
    });
  }
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/**
 * Stops accepting and drops every connection — keep-alive, in-flight, and TLS handshakes that never
 * finish, which `closeAllConnections()` does not see — then resolves once the server is closed.
 * @example
 * await closeServer(server);
 */
export function closeServer(server: net.Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const socket of connections.get(server) ?? []) socket.destroy();
  });
}
