/**
 * @module bench/scenarios/scale-server — the process under test in the scale scenario: a CertManager over
 * a file store or Redis holding N certificates, behind `https.createServer(manager.httpsOptions())`. It
 * marks its timeline (ms since its own process start), measures memory, SNI lookups and maintenance
 * passes, and reports to the parent over IPC. Run with --expose-gc.
 */
import { once } from 'node:events';
import https from 'node:https';

const scriptStartMs = performance.now();
const { CertManager, internal, silentLogger } = await import('../../packages/core/dist/index.js');
const { scaleNames } = await import('../lib/scale-names.js');
const { listen } = await import('../lib/servers.js');
const { storageKeys } = await import('../../packages/core/dist/storage/keys.js');
const config = JSON.parse(process.env.AUTOTLS_BENCH_SCALE);
let storage = config.directory;
if (config.redisUrl) {
  const { Keyv } = await import('keyv');
  const { default: KeyvRedis } = await import('@keyv/redis');
  storage = new Keyv({ store: new KeyvRedis(config.redisUrl), namespace: 'autotls' });
}
const importedMs = performance.now();

const { count, port, lookups, warm } = config;
const names = scaleNames(count);
// No warm-up: the scenario measures the cost of a name left in storage and a handshake that reads it.
const manager = new CertManager({ storage, issuers: [internal()], logger: silentLogger, cacheWarmUp: false });
const server = https.createServer(manager.httpsOptions(), (_req, res) => res.end('ok'));
let firstHandshake;
server.once('secureConnection', (socket) => {
  firstHandshake = { ms: performance.now(), servername: socket.servername };
});

const memory = () => {
  globalThis.gc();
  return process.memoryUsage();
};
const memoryBefore = memory();
await listen(server, port);
const listeningMs = performance.now();
let obtains = 0;
manager.on('cert_obtaining', () => obtains++);
const manageStartMs = performance.now();
await manager.manage(names);
const managedMs = performance.now();
if (obtains > 0) throw new Error(`expected ${count} certificates from storage, got ${obtains} obtains`);

await once(process, 'message'); // the parent's first two handshakes are done: two certificates cached
const memoryAfter = memory();
process.send({ type: 'measured' });
await once(process, 'message'); // the parent's timed handshakes are done

// A handshake's SNI callback for names not in memory (read from storage, context built), one at a time.
const sni = manager.httpsOptions().SNICallback;
const sniOnce = (name) =>
  new Promise((resolve) => {
    sni(name, (error) => {
      if (error) misses++;
      resolve();
    });
  });
let misses = 0;
const warmNames = names.slice(0, warm);
const sniFromStorageNs = [];
for (const name of warmNames) {
  const cached = manager.cache.get(name);
  const start = process.hrtime.bigint();
  await sniOnce(name);
  if (!cached) sniFromStorageNs.push(Number(process.hrtime.bigint() - start));
}
const memoryWarm = memory();
const cachedCertificates = manager.cache.size;

// SNI: the callback every handshake runs (cache lookup), timed one call at a time, over cached names.
const picks = Array.from({ length: lookups }, () => warmNames[Math.floor(Math.random() * warmNames.length)]);
const onContext = (error) => {
  if (error) misses++;
};
const timer = new Float64Array(lookups);
const sniNs = new Float64Array(lookups);
const cacheNs = new Float64Array(lookups);
for (let i = 0; i < lookups; i++) {
  const a = process.hrtime.bigint();
  const b = process.hrtime.bigint();
  timer[i] = Number(b - a);
}
for (let i = 0; i < lookups; i++) {
  const start = process.hrtime.bigint();
  sni(picks[i], onContext);
  sniNs[i] = Number(process.hrtime.bigint() - start);
}
for (let i = 0; i < lookups; i++) {
  const start = process.hrtime.bigint();
  manager.cache.get(picks[i]);
  cacheNs[i] = Number(process.hrtime.bigint() - start);
}

// Maintenance passes, as the 10-minute timer runs them: with nothing due, and with 1 % of the names due
// for a look (their record read and a renewal decided; none needs renewing). Storage cleaning runs at most
// daily; it is marked done so the passes measured are the ones that recur.
const maintenancePasses = {};
const maintenance = manager.maintenance;
if (typeof maintenance?.runPass === 'function') {
  await manager.storage.set(storageKeys.lastClean(), { cleanedAtMs: Date.now() });
  const get = manager.storage.get.bind(manager.storage);
  let recordReads = 0;
  manager.storage.get = (key) => {
    if (key.startsWith(storageKeys.certificatesPrefix)) recordReads++;
    return get(key);
  };
  const measured = async () => {
    recordReads = 0;
    globalThis.gc(); // garbage left by the lookups above is not the pass's
    const cpuBefore = process.cpuUsage();
    const startMs = performance.now();
    await maintenance.runPass();
    const cpu = process.cpuUsage(cpuBefore);
    return {
      wallMs: performance.now() - startMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      recordReads,
      renewalsStarted: obtains,
    };
  };
  maintenancePasses.noneDue = await measured();
  if (typeof maintenance.plan === 'function') {
    for (let i = 0; i < count; i += 100) maintenance.plan(names[i], 0);
    maintenancePasses.onePercentDue = await measured();
  }
}

await manager.close();
server.close();
await storage.disconnect?.();
process.send({
  type: 'result',
  count,
  timelineMs: {
    scriptStart: scriptStartMs,
    imported: importedMs,
    listening: listeningMs,
    manageStart: manageStartMs,
    managed: managedMs,
  },
  firstHandshake,
  manageMs: managedMs - manageStartMs,
  memoryBefore,
  memoryAfter,
  memoryWarm,
  warm: warmNames.length,
  cachedCertificates,
  lookups,
  misses,
  timerNs: [...timer],
  sniNs: [...sniNs],
  cacheNs: [...cacheNs],
  sniFromStorageNs,
  maintenancePasses,
});
