/**
 * @module test/support/stand-in — the HTTPS front a stand-in puts before Pebble (to add what Pebble lacks:
 * ARI, profiles): a loopback server with the test TLS certificate, Pebble reached with the client's Host.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Pebble } from './pebble.js';
import { freePort } from './ports.js';
import { forwardUpstream } from './reverse-proxy.js';
import { testTls } from './tls.js';

export interface StandInFront {
  /** 'https://127.0.0.1:<port>' */
  origin: string;
  /** The directory URL clients use: Pebble's path on the stand-in's origin. */
  directoryUrl: string;
  /** PEM that trusts the stand-in's HTTPS. */
  caPem: string;
  /** Starts serving with `handle`; a handler that throws drops the connection. */
  serve(handle: (req: IncomingMessage, res: ServerResponse) => Promise<unknown>): Promise<void>;
  /** Forwards with the client's Host: Pebble builds its URLs from it, so they already name the stand-in. */
  upstream(
    method: string,
    path: string,
    headers: OutgoingHttpHeaders,
    body?: Buffer,
  ): ReturnType<typeof forwardUpstream>;
  stop(): Promise<void>;
}

/** Writes a whole answer with its Content-Length. */
export function sendWhole(
  res: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  body: Buffer | string,
): void {
  const payload = Buffer.from(body);
  res.writeHead(status, { ...headers, 'content-length': payload.length });
  res.end(payload);
}

export async function standInFront(pebble: Pebble): Promise<StandInFront> {
  const tls = await testTls();
  const target = new URL(pebble.origin);
  const port = await freePort();
  const origin = `https://127.0.0.1:${port}`;
  const sockets = new Set<Socket>();
  const server = createServer({ cert: tls.certPem, key: tls.keyPem });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return {
    origin,
    directoryUrl: `${origin}${new URL(pebble.directoryUrl).pathname}`,
    caPem: tls.caPem,
    async serve(handle) {
      server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        handle(req, res).catch(() => res.destroy());
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host: '127.0.0.1' }, resolve);
      });
    },
    upstream: (method, path, headers, body) =>
      forwardUpstream(target, pebble.caPem, { method, path, headers, body }),
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
