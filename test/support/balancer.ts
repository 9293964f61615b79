/** @module test/support/balancer — a round-robin TCP load balancer on loopback, like one in front of a cluster. */
import { connect, createServer, type Socket } from 'node:net';

export interface Balancer {
  readonly port: number;
  /** How many connections went to each backend port. */
  readonly connections: ReadonlyMap<number, number>;
  close(): Promise<void>;
}

/**
 * Listens on `port` and hands each new connection to the next of `backendPorts` in turn. A backend that
 * refuses (its process died) is skipped for that connection, as a balancer's health check would.
 * `backendPorts` is read at every connection: a test may change it as instances come and go.
 */
export async function startBalancer(port: number, backendPorts: readonly number[]): Promise<Balancer> {
  const sockets = new Set<Socket>();
  const connections = new Map<number, number>();
  let next = 0;
  const server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    const tryBackend = (triesLeft: number) => {
      const backendPort = backendPorts[next++ % backendPorts.length] as number;
      const upstream = connect({ host: '127.0.0.1', port: backendPort });
      sockets.add(upstream);
      upstream.on('close', () => sockets.delete(upstream));
      let connected = false;
      upstream.once('connect', () => {
        connected = true;
        connections.set(backendPort, (connections.get(backendPort) ?? 0) + 1);
        client.pipe(upstream).pipe(client);
      });
      upstream.on('error', () => {
        if (!connected && triesLeft > 1 && !client.destroyed) {
          tryBackend(triesLeft - 1);
        } else client.destroy();
      });
    };
    tryBackend(backendPorts.length);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    connections,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
