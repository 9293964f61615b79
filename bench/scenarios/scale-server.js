/**
 * @module bench/scenarios/scale-server — the process under test in the scale scenario: a CertManager over
 * a file store holding N certificates, behind `https.createServer(manager.httpsOptions())`. It marks its
 * timeline (ms since its own process start), measures memory, SNI lookups and one maintenance pass, and
 * reports to the parent over IPC. Run with --expose-gc.
 */
import { once } from 'node:events';
import https from 'node:https';

const scriptStartMs = performance.now();
const { CertManager, internal, silentLogger } = await import('../../packages/core/dist/index.js');
const { scaleNames } = await import('../lib/scale-names.js');
const { listen } = await import('../lib/servers.js');
const { storageKeys } = await import('../../packages/core/dist/storage/keys.js');
const importedMs = performance.now();

const { directory, count, port, lookups } = JSON.parse(process.env.AUTOTLS_BENCH_SCALE);
const names = scaleNames(count);
const manager = new CertManager({ storage: directory, issuers: [internal()], logger: silentLogger });
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
if (manager.cache.size !== count || obtains > 0) {
  throw new Error(
    `expected ${count} certificates from storage, got ${manager.cache.size} cached and ${obtains} obtains`,
  );
}

await once(process, 'message'); // the parent's handshake probes are done
const memoryAfter = memory();

// SNI: the callback every handshake runs (cache lookup), timed one call at a time.
const sni = manager.httpsOptions().SNICallback;
const picks = Array.from({ length: lookups }, () => names[Math.floor(Math.random() * count)]);
let misses = 0;
const onContext = (error) => {
  if (error) misses++;
};
// Warm-up: JIT, and each name's TLS context, which is built on its first handshake (timed separately).
const contextBuildNs = new Float64Array(count);
for (let i = 0; i < count; i++) {
  const start = process.hrtime.bigint();
  sni(names[i], onContext);
  contextBuildNs[i] = Number(process.hrtime.bigint() - start);
}
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

// One regular maintenance pass over every name (the 10-minute one), if the manager has a maintenance loop.
// Storage cleaning runs at most daily; mark it done so the pass measured is the one that recurs.
let maintenancePass;
const maintenance = manager.maintenance;
if (typeof maintenance?.runPass === 'function') {
  await manager.storage.set(storageKeys.lastClean(), { cleanedAtMs: Date.now() });
  const cpuBefore = process.cpuUsage();
  const startMs = performance.now();
  await maintenance.runPass();
  const cpu = process.cpuUsage(cpuBefore);
  maintenancePass = {
    wallMs: performance.now() - startMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    renewalsStarted: obtains,
  };
}

await manager.close();
server.close();
process.send({
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
  lookups,
  misses,
  timerNs: [...timer],
  sniNs: [...sniNs],
  cacheNs: [...cacheNs],
  contextBuildNs: [...contextBuildNs],
  maintenancePass,
});
