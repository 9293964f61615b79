/**
 * @module test/support/cluster — several instances of an app as separate Node processes
 * (cluster-instance.mjs, on the built @autotls/core) on shared storage, behind a round-robin TCP balancer
 * on the port Pebble validates HTTP-01 through.
 */
import { fileURLToPath } from 'node:url';
import { type Balancer, startBalancer } from './balancer.js';
import { type StartedCAs, startCAs } from './index.js';
import { freePort, freePorts } from './ports.js';
import { type ManagedProcess, startProcess, waitFor } from './processes.js';
import { handshake } from './servers.js';

const script = fileURLToPath(new URL('./cluster-instance.mjs', import.meta.url));

export interface InstanceConfig {
  storage: { redis: string } | { cluster: string[] } | { directory: string };
  directoryUrl: string;
  caPem: string;
  retryIntervalsMs?: number[];
  locks?: { leaseMs?: number; pollMs?: number };
  storageTimeoutMs?: number;
  rateLimit?: { orders?: number; windowMs?: number };
  renewal?: { windowRatio?: number; checkIntervalMs?: number };
}

export interface InstanceState {
  /** Names this instance obtained (cert_obtained), in order. */
  obtained: string[];
  /** cert_failed events so far. */
  failed: number;
  serials: Record<string, string | null>;
}

export interface Instance {
  readonly process: ManagedProcess;
  readonly httpsPort: number;
  readonly httpPort: number;
  /** manage(names) in the instance; resolves with how long it took there. */
  manage(names: string[]): Promise<{ ms: number }>;
  state(names?: string[]): Promise<InstanceState>;
  /** Whether a handshake for `name` gets a certificate that verifies against `rootPem`. */
  serves(name: string, rootPem: string): Promise<boolean>;
  /** Graceful close through the control port, then the process ends. */
  close(): Promise<void>;
}

async function control<T>(port: number, path: string): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST' });
  if (!response.ok) throw new Error(`instance control ${path}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

const query = (names: readonly string[]) => names.map((name) => `name=${encodeURIComponent(name)}`).join('&');

/** Starts one instance process; its plain-HTTP port is where the balancer sends the CA's requests. */
export async function startInstance(config: InstanceConfig, label = 'instance'): Promise<Instance> {
  const [httpPort, httpsPort, controlPort] = (await freePorts(3)) as [number, number, number];
  const child = await startProcess({
    name: label,
    command: process.execPath,
    args: [script],
    env: { AUTOTLS_INSTANCE: JSON.stringify({ ...config, httpPort, httpsPort, controlPort }) },
    ready: { output: '"listening":true' },
    timeoutMs: 20_000,
  });
  return {
    process: child,
    httpPort,
    httpsPort,
    manage: (names) => control(controlPort, `/manage?${query(names)}`),
    state: (names = []) => control(controlPort, `/state?${query(names)}`),
    serves: (name, rootPem) =>
      handshake(httpsPort, name, rootPem).then(
        (result) => result.authorized,
        () => false,
      ),
    async close() {
      if (!child.running) return;
      await control(controlPort, '/close').catch(() => {});
      await Promise.race([child.exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      await child.stop();
    },
  };
}

export interface Cluster {
  readonly instances: Instance[];
  readonly balancer: Balancer;
  /** The balancer's backends (plain-HTTP ports), read at every connection: drop one to take it out. */
  readonly backends: number[];
  /** Every instance manages `names` at once. */
  manageEverywhere(names: string[]): Promise<void>;
  /** How many of (instance × name) pairs serve a certificate that verifies against `rootPem`. */
  servedCount(names: readonly string[], rootPem: string): Promise<number>;
  close(): Promise<void>;
}

/** `count` instances behind a round-robin balancer listening on `httpPort` (Pebble's HTTP-01 port). */
export async function startCluster(
  count: number,
  httpPort: number,
  config: InstanceConfig,
): Promise<Cluster> {
  const instances = await Promise.all(
    Array.from({ length: count }, (_, index) => startInstance(config, `instance-${index + 1}`)),
  );
  const backends = instances.map((instance) => instance.httpPort);
  const balancer = await startBalancer(httpPort, backends);
  return {
    instances,
    balancer,
    backends,
    async manageEverywhere(names) {
      await Promise.all(instances.map((instance) => instance.manage(names)));
    },
    async servedCount(names, rootPem) {
      const verdicts = await Promise.all(
        instances.flatMap((instance) => names.map((name) => instance.serves(name, rootPem))),
      );
      return verdicts.filter(Boolean).length;
    },
    async close() {
      await Promise.all(instances.map((instance) => instance.close()));
      await balancer.close();
    },
  };
}

export interface ClusterOnPebble {
  cas: StartedCAs<'ca'>;
  cluster: Cluster;
  /** Pebble's issuing root, to verify served certificates against. */
  rootPem: string;
  /** Requests Pebble logged whose route contains `route` (`order-plz`, `sign-me-up`, `finalize-order` …). */
  requests(route: string): number;
  /** Stops the instances, the balancer and Pebble (the storage is the caller's). */
  stop(): Promise<void>;
}

/**
 * Pebble (with its challtestsrv) and three instance processes on `storage`, behind the balancer Pebble
 * validates HTTP-01 through: the first retry a minute away, 2 s leases; `config` overrides.
 */
export async function clusterOnPebble(
  storage: InstanceConfig['storage'],
  config: Partial<Omit<InstanceConfig, 'storage'>> = {},
): Promise<ClusterOnPebble> {
  const httpPort = await freePort();
  const cas = await startCAs({ names: ['ca'], httpPort });
  const { ca } = cas.pebbles;
  try {
    const cluster = await startCluster(3, httpPort, {
      storage,
      directoryUrl: ca.directoryUrl,
      caPem: ca.caPem,
      retryIntervalsMs: [60_000],
      locks: { leaseMs: 2_000, pollMs: 100 },
      ...config,
    });
    return {
      cas,
      cluster,
      rootPem: await ca.rootPem(),
      requests: (route) => ca.requestLog().filter((line) => line.route.includes(route)).length,
      async stop() {
        await cluster.close();
        await cas.stopAll();
      },
    };
  } catch (error) {
    await cas.stopAll();
    throw error;
  }
}

/**
 * Every instance manages `names` at once; resolves when every instance serves every name (verified against
 * `rootPem`), with how long that took and each instance's state.
 */
export async function manageUntilServedEverywhere(
  cluster: Cluster,
  names: readonly string[],
  rootPem: string,
): Promise<{ readyAfterMs: number; states: InstanceState[] }> {
  const startedAt = Date.now();
  await cluster.manageEverywhere([...names]);
  const everywhere = names.length * cluster.instances.length;
  await waitFor(async () => (await cluster.servedCount(names, rootPem)) === everywhere, {
    timeoutMs: 40_000,
    intervalMs: 250,
    description: `${everywhere}/${everywhere} names served`,
  }).catch((error) => {
    if (process.env.AUTOTLS_TEST_DEBUG) console.log(cluster.instances[0]?.process.output().slice(-6000));
    throw error;
  });
  const readyAfterMs = Date.now() - startedAt;
  return { readyAfterMs, states: await Promise.all(cluster.instances.map((instance) => instance.state())) };
}
