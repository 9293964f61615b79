/**
 * The lock holder of a name, in a cluster of three instance processes on one Redis, dies mid-order
 * (SIGKILL) or is paused past its lease (SIGSTOP) and resumed: another instance takes over within about
 * a lease, and the resumed holder orders nothing and writes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, type ClusterOnPebble, clusterOnPebble, type Instance } from './support/cluster.js';
import { delay, waitFor } from './support/processes.js';
import { type Redis, startRedis } from './support/redis.js';

const LEASE_MS = 2_000;

let redis: Redis;
let scenario: ClusterOnPebble;
let cluster: Cluster;
let rootPem: string;
const requests = (route: string) => scenario.requests(route);

beforeAll(async () => {
  redis = await startRedis();
  scenario = await clusterOnPebble(
    { redis: redis.url },
    {
      locks: { leaseMs: LEASE_MS, pollMs: 100 },
    },
  );
  ({ cluster, rootPem } = scenario);
});

afterAll(async () => {
  await scenario?.stop();
  await redis?.stop();
});

/** Every live instance manages `name`; resolves with the one that holds its lock, mid-order. */
async function holderMidOrder(name: string, instances: Instance[]): Promise<Instance> {
  const marks = instances.map((instance) => instance.process.countOutput('trying to solve challenge'));
  await Promise.all(instances.map((instance) => instance.manage([name])));
  let holder: Instance | undefined;
  await waitFor(
    () => {
      holder = instances.find(
        (instance, index) => instance.process.countOutput('trying to solve challenge') > (marks[index] ?? 0),
      );
      return holder !== undefined;
    },
    { timeoutMs: 10_000, intervalMs: 5, description: 'an instance solving the challenge' },
  );
  return holder as Instance;
}

async function servedBy(instances: Instance[], name: string): Promise<boolean> {
  const verdicts = await Promise.all(instances.map((instance) => instance.serves(name, rootPem)));
  return verdicts.every(Boolean);
}

describe('a lock holder that dies or stalls mid-order', () => {
  it('is replaced within about a lease when SIGKILLed, with at most 2 orders for the name', async () => {
    const name = 'killed-holder.cluster.test';
    const ordersBefore = requests('order-plz');
    const holder = await holderMidOrder(name, cluster.instances);
    process.kill(holder.process.pid, 'SIGKILL');
    const killedAt = Date.now();
    cluster.backends.splice(cluster.backends.indexOf(holder.httpPort), 1); // as a health check would
    const others = cluster.instances.filter((instance) => instance !== holder);
    await waitFor(() => servedBy(others, name), {
      timeoutMs: LEASE_MS + 8_000,
      intervalMs: 100,
      description: 'the other instances serving the name',
    }).catch((error) => {
      if (process.env.AUTOTLS_TEST_DEBUG)
        for (const o of others) console.log(o.process.output().slice(-5000));
      throw error;
    });
    const takeoverMs = Date.now() - killedAt;
    console.log(
      'SIGKILLed holder',
      JSON.stringify({ takeoverMs, orders: requests('order-plz') - ordersBefore }),
    );
    expect(takeoverMs).toBeLessThan(LEASE_MS + 2_000);
    expect(requests('order-plz') - ordersBefore).toBeLessThanOrEqual(2);
  });

  it('orders and writes nothing after it resumes from a pause past its lease', async () => {
    const live = cluster.instances.filter((instance) => instance.process.running);
    const name = 'paused-holder.cluster.test';
    const holder = await holderMidOrder(name, live);
    process.kill(holder.process.pid, 'SIGSTOP');
    // The balancer's health check takes a stalled instance out (it would hang the CA's validation).
    cluster.backends.splice(cluster.backends.indexOf(holder.httpPort), 1);
    const others = live.filter((instance) => instance !== holder);
    try {
      await waitFor(() => servedBy(others, name), {
        timeoutMs: LEASE_MS + 8_000,
        intervalMs: 100,
        description: 'another instance taking over and serving the name',
      }).catch((error) => {
        if (process.env.AUTOTLS_TEST_DEBUG)
          for (const o of others) console.log(o.process.output().slice(-5000));
        throw error;
      });
    } finally {
      process.kill(holder.process.pid, 'SIGCONT');
      cluster.backends.push(holder.httpPort);
    }
    const serial = (await others[0]?.state([name]))?.serials[name];
    const ordersAtResume = requests('order-plz');
    const finalizesAtResume = requests('finalize');
    const challengesAtResume = requests('chalZ');
    await delay(3_000);
    expect(holder.process.running).toBe(true);
    expect(requests('order-plz')).toBe(ordersAtResume);
    expect(requests('finalize')).toBe(finalizesAtResume);
    expect(requests('chalZ')).toBe(challengesAtResume);
    // What the new holder wrote is what everyone serves, the resumed one included once it reloads.
    for (const instance of others) expect((await instance.state([name])).serials[name]).toBe(serial);
    expect((await holder.state([name])).obtained).not.toContain(name);
    console.log(
      'SIGSTOPped holder',
      JSON.stringify({ lostLeaseLogged: holder.process.countOutput('lock lease lost') }),
    );
  });
});
