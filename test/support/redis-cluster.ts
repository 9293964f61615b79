/** @module test/support/redis-cluster — a throwaway 3-master Redis Cluster on loopback (no replicas). */
import { freePorts } from './ports.js';
import { type ManagedProcess, makeTempDir, startProcess } from './processes.js';
import { redisCommand } from './redis.js';

export interface RedisCluster {
  /** 'redis://127.0.0.1:<port>' of each master, for `createCluster({ rootNodes })`. */
  readonly urls: string[];
  readonly pids: number[];
  stop(): Promise<void>;
}

/**
 * Three `redis-server --cluster-enabled yes` (client and bus ports chosen free), joined by
 * `redis-cli --cluster create`; resolves once CLUSTER INFO says ok on every node.
 */
export async function startRedisCluster(): Promise<RedisCluster> {
  const ports = await freePorts(6);
  const clientPorts = ports.slice(0, 3);
  const busPorts = ports.slice(3);
  const nodes: ManagedProcess[] = [];
  try {
    for (const [index, port] of clientPorts.entries()) {
      const dir = makeTempDir('autotls-test-redis-cluster-');
      nodes.push(
        await startProcess({
          name: `redis-cluster-${index + 1}`,
          command: 'redis-server',
          args: [
            ...['--port', String(port), '--cluster-port', String(busPorts[index]), '--bind', '127.0.0.1'],
            ...['--cluster-enabled', 'yes', '--cluster-config-file', `${dir}/nodes.conf`],
            ...['--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir],
          ],
          cwd: dir,
          notInstalledMessage: 'redis-server is not installed: run .ci/run or apt-get install redis-server',
          ready: { port },
        }),
      );
    }
    const create = await startProcess({
      name: 'redis-cli --cluster create',
      command: 'redis-cli',
      args: ['--cluster', 'create', ...clientPorts.map((port) => `127.0.0.1:${port}`), '--cluster-yes'],
      ready: { output: /All 16384 slots covered/ },
      timeoutMs: 20_000,
    });
    await create.exited;
    const deadline = Date.now() + 15_000;
    for (const port of clientPorts) {
      for (;;) {
        const info = await redisCommand(port, ['CLUSTER', 'INFO']);
        if (typeof info === 'string' && info.includes('cluster_state:ok')) break;
        if (Date.now() > deadline) throw new Error(`redis cluster node ${port} not ok: ${String(info)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } catch (error) {
    await Promise.all(nodes.map((node) => node.stop()));
    throw error;
  }
  return {
    urls: clientPorts.map((port) => `redis://127.0.0.1:${port}`),
    pids: nodes.map((node) => node.pid),
    stop: async () => {
      await Promise.all(nodes.map((node) => node.stop()));
    },
  };
}
