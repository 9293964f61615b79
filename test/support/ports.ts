/** @module test/support/ports — free loopback ports for helper processes and test servers. */
import { createSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';

export interface FreePortOptions {
  /** Address to probe; default '127.0.0.1'. */
  host?: string;
  /** Also require the same port to be free for UDP (for DNS servers, which bind both). */
  udp?: boolean;
}

function listenTcp(host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port, host, exclusive: true }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function closeTcp(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function udpFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind({ port, address: host, exclusive: true }, () => socket.close(() => resolve(true)));
  });
}

/**
 * Distinct free TCP ports on `host`. All probe listeners are held open until every port is picked, so the
 * returned ports never repeat. (A port can still be taken by someone else before the caller binds it.)
 */
export async function freePorts(count: number, options: FreePortOptions = {}): Promise<number[]> {
  const host = options.host ?? '127.0.0.1';
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    let attempts = 0;
    while (ports.length < count) {
      if (++attempts > count * 20) throw new Error(`could not find ${count} free ports on ${host}`);
      const server = await listenTcp(host, 0);
      servers.push(server);
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('unexpected server address');
      if (options.udp && !(await udpFree(host, address.port))) continue;
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map(closeTcp));
  }
}

/** One free TCP port on 127.0.0.1 (listen on port 0, read it, close). */
export async function freePort(options: FreePortOptions = {}): Promise<number> {
  const [port] = await freePorts(1, options);
  if (port === undefined) throw new Error('no free port');
  return port;
}
