/**
 * @module bench/scenarios/cluster — three instances on one Redis (storage and locks), one load balancer
 * in front of their plain-HTTP handlers, 100 new names (3 with --quick) given to every instance's
 * manage() at once: the time until every instance serves every name, and the orders the CA saw (one per
 * name expected).
 */
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import KeyvRedis from '@keyv/redis';
import { Keyv } from 'keyv';
import { acme, CertManager, silentLogger } from '../../packages/core/dist/index.js';
import { freePort, startChallTestSrv, startPebble, startRedis } from '../lib/harness.js';
import { ms, row } from '../lib/report.js';
import { close, listen } from '../lib/servers.js';

const INSTANCES = 3;

export const title = 'cluster';

export async function run({ quick, log }) {
  // --quick: few enough that the three instances' admissions fit one 10-per-10-s window (a smoke run).
  const count = quick ? 3 : 100;
  const names = Array.from({ length: count }, (_, i) => `c${i + 1}.cluster.bench.test`);
  const dns = await startChallTestSrv();
  const httpPort = await freePort();
  const [pebble, redis] = await Promise.all([
    startPebble({ dnsServer: dns.dnsAddress, httpPort, nonceRejectPercent: 0 }),
    startRedis(),
  ]);
  const instances = [];
  let balancer;
  try {
    for (let i = 0; i < INSTANCES; i++) instances.push(await instance(pebble, redis.url));
    let next = 0;
    balancer = http.createServer((req, res) => instances[next++ % INSTANCES].handler(req, res));
    await listen(balancer, httpPort);
    const orders = () => pebble.requestLog().filter((line) => line.route.includes('order-plz')).length;
    const ordersBefore = orders();
    log(`${INSTANCES} instances, ${count} new names each, all at once`);
    const startMs = performance.now();
    const readyMs = await Promise.all(
      instances.map(async ({ manager }) => {
        await manager.manage(names);
        await manager.ready(names);
        return performance.now() - startMs;
      }),
    );
    const everyInstanceMs = Math.max(...readyMs);
    // Every instance answers every name with the certificate issued for it.
    let served = 0;
    for (const { port } of instances) {
      for (const name of names) if (await servesName(port, name)) served++;
    }
    return {
      instances: INSTANCES,
      names: count,
      everyInstanceServesEveryNameMs: everyInstanceMs,
      readyMsPerInstance: readyMs,
      handshakesServed: served,
      handshakesTried: INSTANCES * count,
      orders: orders() - ordersBefore,
    };
  } finally {
    if (balancer) await close(balancer);
    await Promise.all(instances.map((one) => one.close()));
    await redis.stop();
    await pebble.stop();
    await dns.stop();
  }
}

async function instance(pebble, redisUrl) {
  const keyv = new Keyv({ store: new KeyvRedis(redisUrl), namespace: 'autotls' });
  const manager = new CertManager({
    issuers: [acme({ directoryUrl: pebble.directoryUrl, ca: pebble.caPem, challenges: ['http-01'] })],
    storage: keyv,
    logger: silentLogger,
  });
  const secure = https.createServer(manager.httpsOptions(), (_req, res) => res.end('ok'));
  const port = await listen(secure);
  return {
    manager,
    port,
    handler: manager.httpHandler(),
    async close() {
      await close(secure);
      await manager.close();
      await keyv.disconnect();
    },
  };
}

function servesName(port, servername) {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const subject = socket.getPeerCertificate().subjectaltname;
      socket.end();
      resolve(subject === `DNS:${servername}`);
    });
    socket.once('error', () => resolve(false));
  });
}

export function rows(r) {
  const heading = `${title} (${r.instances} instances on one Redis, ${r.names} names)`;
  return [
    row(heading, 'every instance serves every name, from manage()', ms(r.everyInstanceServesEveryNameMs)),
    row(
      heading,
      'orders / handshakes served',
      `${r.orders} / ${r.handshakesServed} of ${r.handshakesTried}`,
      `${r.names} / all`,
      r.orders === r.names && r.handshakesServed === r.handshakesTried,
    ),
  ];
}
