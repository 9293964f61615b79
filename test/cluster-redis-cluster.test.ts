/**
 * The 20-name scenario on a real 3-master Redis Cluster through @keyv/redis's cluster client: three
 * instance processes behind a round-robin balancer, one order per name, every instance serving every
 * name, no failed attempt; each lock and its fencing counter on one slot.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cluster,
  type ClusterOnPebble,
  clusterOnPebble,
  manageUntilServedEverywhere,
} from './support/cluster.js';
import { redisCommand } from './support/redis.js';
import { type RedisCluster, startRedisCluster } from './support/redis-cluster.js';

const NAMES = Array.from({ length: 20 }, (_, index) => `rc${index}.cluster.test`);

let redisCluster: RedisCluster;
let scenario: ClusterOnPebble;
let cluster: Cluster;
let rootPem: string;
const requests = (route: string) => scenario.requests(route);

beforeAll(async () => {
  redisCluster = await startRedisCluster();
  scenario = await clusterOnPebble({ cluster: redisCluster.urls });
  ({ cluster, rootPem } = scenario);
});

afterAll(async () => {
  await scenario?.stop();
  await redisCluster?.stop();
});

describe('a cluster of three on a 3-master Redis Cluster', () => {
  it('orders each of 20 names once, with no failed attempt, and serves all 20 everywhere', async () => {
    const { readyAfterMs, states } = await manageUntilServedEverywhere(cluster, NAMES, rootPem);
    console.log(
      '20 names on a Redis Cluster',
      JSON.stringify({
        readyAfterMs,
        orders: states.map((s) => s.obtained.length),
        failed: states.map((s) => s.failed),
      }),
    );
    expect(requests('order-plz')).toBe(20);
    expect(requests('sign-me-up')).toBe(1);
    expect(states.map((state) => state.failed)).toEqual([0, 0, 0]);
    // A lock's key and its fencing counter hash to one slot (the `{…}` tag), as the script needs.
    const port = Number(new URL(redisCluster.urls[0] as string).port);
    const lock = 'autotls:locks:{cert:rc0.cluster.test}';
    expect(await redisCommand(port, ['CLUSTER', 'KEYSLOT', lock])).toBe(
      await redisCommand(port, ['CLUSTER', 'KEYSLOT', `${lock}:fencing`]),
    );
  });
});
