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
 * Ports are handed out below the kernel's ephemeral range (32768+, where `listen(0)` and outgoing connections
 * land), from a slice of their own per vitest worker slot. Two test files running at once can then never be
 * given the same port, not even one the other just released to restart a server on it.
 */
const RANGE_START = 10_000;
const SLICE_SIZE = 4_000;
const slot = Number(process.env.VITEST_POOL_ID) || 3 + (process.pid % 2);
const sliceStart = RANGE_START + ((slot - 1) % 5) * SLICE_SIZE;
let nextOffset = 0;

function nextCandidate(): number {
  const port = sliceStart + (nextOffset % SLICE_SIZE);
  nextOffset++;
  return port;
}

/**
 * Distinct free TCP ports on `host`, never the same twice in this process. All probe listeners are held
 * open until every port is picked. (Only this process's own later use can collide with them.)
 */
export async function freePorts(count: number, options: FreePortOptions = {}): Promise<number[]> {
  const host = options.host ?? '127.0.0.1';
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    let attempts = 0;
    while (ports.length < count) {
      if (++attempts > SLICE_SIZE) throw new Error(`could not find ${count} free ports on ${host}`);
      const candidate = nextCandidate();
      const server = await listenTcp(host, candidate).catch(() => undefined);
      if (!server) continue;
      servers.push(server);
      if (options.udp && !(await udpFree(host, candidate))) continue;
      ports.push(candidate);
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
