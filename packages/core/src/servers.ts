/** @module The HTTPS + plain-HTTP server pair the adapters' `listen()` starts, and closing servers without leftovers. */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type tls from 'node:tls';
import type { CertManager, CertManagerOptions } from './manager.js';

/** What every framework adapter accepts besides the manager's own options. */
export interface AdapterOptions extends CertManagerOptions {
  /** Use an existing manager instead of creating one from these options. */
  manager?: CertManager;
  /** Redirect plain HTTP to HTTPS (default true). */
  redirect?: boolean;
}

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
const connections = new WeakMap<net.Server, Map<string, net.Socket>>();

/**
 * The server's open sockets by peer address, kept current; with `untilSecure`, only those still in their
 * TLS handshake (which `closeAllConnections()` does not see, and which can hold a close for minutes).
 */
export function trackConnections(server: net.Server, { untilSecure = false } = {}): Map<string, net.Socket> {
  const open = new Map<string, net.Socket>();
  // The TLS socket of 'secureConnection' wraps the raw one of 'connection': the peer address ties them.
  const peer = (socket: net.Socket) => `${socket.remoteAddress}:${socket.remotePort}`;
  server.on('connection', (socket: net.Socket) => {
    const key = peer(socket);
    open.set(key, socket);
    socket.once('close', () => open.delete(key));
  });
  if (untilSecure) server.on('secureConnection', (socket: tls.TLSSocket) => open.delete(peer(socket)));
  return open;
}

/**
 * Listens on `port` (0: any free port) and resolves with the bound port; rejects on a listen error.
 * @example
 * const port = await listenServer(http.createServer(handler), 0, '127.0.0.1');
 */
export function listenServer(server: net.Server, port: number, host?: string): Promise<number> {
  if (!connections.has(server)) connections.set(server, trackConnections(server));
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
    for (const socket of connections.get(server)?.values() ?? []) socket.destroy();
  });
}
