/** @module The HTTPS + plain-HTTP server pair the adapters' `listen()` starts, and closing servers without leftovers. */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type tls from 'node:tls';
import type { CertManager } from './manager.js';

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

/** A port that cannot be listened on, with a one-line message that says what to do about it. */
export class ListenError extends Error {
  constructor(
    readonly port: number,
    readonly host: string | undefined,
    readonly code: string | undefined,
    cause: unknown,
  ) {
    super(listenAdvice(port, host, code, cause), { cause });
    this.name = 'ListenError';
  }
}

function listenAdvice(
  port: number,
  host: string | undefined,
  code: string | undefined,
  cause: unknown,
): string {
  const where = `${host ? `${host}:` : 'port '}${port}`;
  if (code === 'EADDRINUSE') {
    return `autotls: ${where} is already in use by another process: stop it, or choose another port`;
  }
  if (code === 'EACCES') {
    return (
      `autotls: no permission to listen on ${where}: ports below 1024 need privileges. Use another port ` +
      'and redirect to it, or let Node bind them: sudo setcap cap_net_bind_service=+ep $(which node)'
    );
  }
  if (code === 'EADDRNOTAVAIL')
    return `autotls: ${host} is not an address of this machine (listening on ${where})`;
  return `autotls: cannot listen on ${where}: ${cause instanceof Error ? cause.message : String(cause)}`;
}

/**
 * Starts an HTTPS server with the manager's certificates (and TLS-ALPN-01 answers) and a plain-HTTP
 * server, both for `listener`. If either cannot listen, both are closed and the `ListenError` is thrown.
 * @example
 * const servers = await listenHttpAndHttps(manager, app.callback(), { httpPort: 80, httpsPort: 443 });
 */
export async function listenHttpAndHttps(
  manager: CertManager,
  listener: http.RequestListener,
  options: ListenOptions = {},
): Promise<{ http: http.Server; https: https.Server; httpsPort: number }> {
  const secure = https.createServer(manager.httpsOptions(), listener);
  manager.attach(secure);
  const plain = http.createServer(listener);
  try {
    const httpsPort = await listenServer(secure, options.httpsPort ?? 443, options.host);
    await listenServer(plain, options.httpPort ?? 80, options.host);
    return { http: plain, https: secure, httpsPort };
  } catch (error) {
    await Promise.all([closeServer(plain), closeServer(secure)]);
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
 * Listens on `port` (0: any free port) and resolves with the bound port; rejects with a {@link ListenError}.
 * @example
 * const port = await listenServer(http.createServer(handler), 0, '127.0.0.1');
 */
export function listenServer(server: net.Server, port: number, host?: string): Promise<number> {
  if (!connections.has(server)) connections.set(server, trackConnections(server));
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => reject(new ListenError(port, host, error.code, error));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
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
