/**
 * Three instances (separate Node processes) on one Redis behind a round-robin balancer, all managing the
 * same 20 names at once: one account, one order per name, the orders spread over the instances, and
 * every instance serving every name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cluster,
  type ClusterOnPebble,
  clusterOnPebble,
  manageUntilServedEverywhere,
} from './support/cluster.js';
import { type Redis, startRedis } from './support/redis.js';

const NAMES = Array.from({ length: 20 }, (_, index) => `spread${index}.cluster.test`);

let redis: Redis;
let scenario: ClusterOnPebble;
let cluster: Cluster;
let rootPem: string;
const requests = (route: string) => scenario.requests(route);

beforeAll(async () => {
  redis = await startRedis();
  scenario = await clusterOnPebble({ redis: redis.url });
  ({ cluster, rootPem } = scenario);
});

afterAll(async () => {
  await scenario?.stop();
  await redis?.stop();
});

describe('a cluster of three on one Redis', () => {
  it('registers one account, orders each of 20 names once, spreads the orders and serves all 20 everywhere', async () => {
    const { readyAfterMs, states } = await manageUntilServedEverywhere(cluster, NAMES, rootPem);
    const ordersPerInstance = states.map((state) => state.obtained.length);
    console.log(
      '20 names on 3 instances',
      JSON.stringify({ readyAfterMs, ordersPerInstance, failed: states.map((s) => s.failed) }),
    );
    expect(requests('sign-me-up')).toBe(1);
    expect(requests('order-plz')).toBe(20);
    expect(ordersPerInstance.reduce((a, b) => a + b)).toBe(20);
    expect(ordersPerInstance.filter((count) => count > 0).length).toBeGreaterThan(1);
    expect(states.map((state) => state.failed)).toEqual([0, 0, 0]);
  });
});
