/**
 * @module Handshakes without SNI: a client that connects by IP address usually sends no server name, and
 * Node then never calls `SNICallback` — it uses the server's default context. We set that default, per
 * connection, to the certificate of the managed IP address the client connected to, else `defaultName`'s
 * (Caddy: local IP, then the default server name).
 */
import type net from 'node:net';
import type tls from 'node:tls';
import type { CachedCertificate } from './cache.js';

/** Picks the certificate for a connection to `localAddress` (plain IP text, no `::ffff:` prefix). */
export type NoSniPicker = (localAddress: string) => CachedCertificate | undefined;

type ConnectionListener = (socket: net.Socket) => void;

/**
 * Wraps `server`'s connection listeners so each new connection's default context is the picked one. Call it
 * before anything else that wraps connections (the TLS-ALPN-01 peek), so that nothing asynchronous runs
 * between choosing the context and Node's own listener reading it.
 * @example
 * serveHandshakesWithoutSni(server, (address) => cache.get(address));
 */
export function serveHandshakesWithoutSni(server: tls.Server, pick: NoSniPicker): void {
  const nodeListeners = server.listeners('connection') as ConnectionListener[];
  server.removeAllListeners('connection');
  let current: CachedCertificate | undefined;
  server.on('connection', (socket: net.Socket) => {
    const certificate = pick(plainAddress(socket.localAddress ?? ''));
    // Rebuilding the default context costs about a millisecond: only when the choice changes.
    if (certificate && certificate !== current) {
      current = certificate;
      server.setSecureContext({ cert: certificate.certificatePem, key: certificate.privateKeyPem });
    }
    for (const listener of nodeListeners) listener.call(server, socket);
  });
}

/** `::ffff:127.0.0.1` (an IPv4 client on a dual-stack socket) → `127.0.0.1`. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
