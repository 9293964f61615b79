/**
 * @module bench/scenarios/scale — N managed names already in storage (10,000; 1,000 with --quick; 100,000
 * in the file store and in Redis with --full), with the renewal schedule a previous run left: time from
 * process start until the first handshake is served, manage(), memory per name, handshakes for names read
 * from storage and for cached ones, SNI lookups, and maintenance passes with none and with 1 % due. The
 * server runs in its own process; this one seeds the store and makes the handshakes.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import https from 'node:https';
import { delay, freePort, makeTempDir, startRedis } from '../lib/harness.js';
import { ms, row } from '../lib/report.js';
import { scaleNames, seedStore } from '../lib/scale-fixture.js';
import { percentile } from '../lib/stats.js';

const PROBE_TIMEOUT_MS = 120_000;
/** Handshakes timed one at a time for names read from storage, then again for the same (now cached) names. */
const TIMED_HANDSHAKES = 300;

export const title = 'scale';

export async function run({ quick, full, log }) {
  const count = quick ? 1_000 : full ? 100_000 : 10_000;
  const names = scaleNames(count);
  const backends = full ? ['file', 'redis'] : ['file'];
  const results = { names: count };
  for (const backend of backends) {
    results[backend] = await runOn(backend, names, { quick, log });
  }
  return results;
}

async function runOn(backend, names, { quick, log }) {
  const count = names.length;
  const redis = backend === 'redis' ? await startRedis() : undefined;
  try {
    const target = redis ? { redisUrl: redis.url } : { directory: makeTempDir('autotls-bench-scale-') };
    const seeding = await seedStore(target, names);
    log(
      `${backend}: seeded ${count} certificates and their schedule in ${seeding.totalMs.toFixed(0)} ms (signing ${seeding.signingMs.toFixed(0)}, writing ${seeding.writingMs.toFixed(0)})`,
    );
    const port = await freePort();
    const spawnedAt = performance.now();
    const child = fork(new URL('./scale-server.js', import.meta.url), {
      execArgv: ['--expose-gc'],
      env: {
        ...process.env,
        AUTOTLS_BENCH_SCALE: JSON.stringify({
          ...target,
          count,
          port,
          lookups: quick ? 20_000 : 200_000,
          warm: Math.min(count, quick ? 1_000 : 10_000),
        }),
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = once(child, 'exit');
    const messages = [];
    const waiters = [];
    child.on('message', (message) => (waiters.shift() ?? ((m) => messages.push(m)))(message));
    const died = exited.then(([code, signal]) =>
      Promise.reject(new Error(`scale server exited (${code ?? signal})`)),
    );
    died.catch(() => {});
    const nextMessage = () =>
      Promise.race([
        messages.length > 0 ? messages.shift() : new Promise((resolve) => waiters.push(resolve)),
        died,
      ]);
    try {
      // A visitor asks for the first name in the list, another for the last one, from the moment it starts.
      const [first, last] = await Promise.all([
        probe(port, names[0], spawnedAt),
        probe(port, names.at(-1), spawnedAt),
      ]);
      child.send('probed');
      await nextMessage(); // memory measured
      // Names nobody asked for yet: each handshake reads its certificate from storage; then again, cached.
      const picked = pickNames(names.slice(1, -1), TIMED_HANDSHAKES);
      const fromStorageMs = await timedHandshakes(port, picked);
      const cachedMs = await timedHandshakes(port, picked);
      child.send('handshaken');
      const result = await nextMessage();
      child.disconnect(); // it exits once we let go
      await exited;
      return {
        ...summary(result, { first, last, count }),
        handshakeFromStorageMs: distribution(fromStorageMs),
        handshakeCachedMs: distribution(cachedMs),
        seedingMs: seeding,
      };
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  } finally {
    await redis?.stop();
  }
}

function pickNames(names, howMany) {
  const step = Math.max(1, Math.floor(names.length / howMany));
  return Array.from({ length: Math.min(howMany, names.length) }, (_, i) => names[i * step]);
}

async function timedHandshakes(port, names) {
  const samples = [];
  for (const name of names) {
    const start = performance.now();
    if (!(await served(port, name))) throw new Error(`no handshake for ${name}`);
    samples.push(performance.now() - start);
  }
  return samples;
}

/** HTTPS requests with SNI `servername` until one is answered; ms from `since`. */
async function probe(port, servername, since) {
  let attempts = 0;
  for (;;) {
    attempts++;
    if (await served(port, servername)) return { ms: performance.now() - since, attempts };
    if (performance.now() - since > PROBE_TIMEOUT_MS)
      throw new Error(`no handshake for ${servername} within ${PROBE_TIMEOUT_MS} ms`);
    await delay(2);
  }
}

/** One GET / on a new connection: the handshake completes on both sides before the answer comes. */
function served(port, servername) {
  return new Promise((resolve) => {
    const request = https.get({
      host: '127.0.0.1',
      port,
      servername,
      path: '/',
      agent: false,
      rejectUnauthorized: false,
    });
    request.setTimeout(PROBE_TIMEOUT_MS, () => request.destroy());
    request.once('response', (response) => {
      response.resume();
      response.once('end', () => resolve(response.statusCode === 200));
    });
    request.once('error', () => resolve(false));
  });
}

function distribution(samples, scale = 1) {
  const sorted = Float64Array.from(samples).sort();
  return {
    p50: percentile(sorted, 50) / scale,
    p99: percentile(sorted, 99) / scale,
    max: sorted.at(-1) / scale,
    samples: sorted.length,
  };
}

function summary(result, { first, last, count }) {
  const micros = (samples) => distribution(samples, 1000);
  const perName = (after, field) => (after[field] - result.memoryBefore[field]) / count;
  const perCached = (field) => (result.memoryWarm[field] - result.memoryAfter[field]) / result.warm;
  return {
    names: count,
    manageMs: result.manageMs,
    timelineMs: result.timelineMs,
    firstHandshakeServedMs: result.firstHandshake?.ms,
    firstHandshakeName: result.firstHandshake?.servername,
    probeFirstNameMs: first.ms,
    probeLastNameMs: last.ms,
    memoryPerNameBytes: {
      rss: perName(result.memoryAfter, 'rss'),
      heapUsed: perName(result.memoryAfter, 'heapUsed'),
      external: perName(result.memoryAfter, 'external'),
    },
    memoryPerCachedCertificateBytes: { rss: perCached('rss'), heapUsed: perCached('heapUsed') },
    memoryBefore: result.memoryBefore,
    memoryAfter: result.memoryAfter,
    memoryWarm: result.memoryWarm,
    cachedCertificates: result.cachedCertificates,
    sniFromStorageUs: micros(result.sniFromStorageNs),
    sniLookupUs: { ...micros(result.sniNs), lookups: result.lookups, misses: result.misses },
    cacheGetUs: micros(result.cacheNs),
    timerOverheadUs: micros(result.timerNs),
    maintenancePasses: result.maintenancePasses,
  };
}

export function rows(results) {
  const out = [];
  for (const backend of ['file', 'redis']) {
    const r = results[backend];
    if (!r) continue;
    const store = backend === 'file' ? 'file store' : 'Redis';
    const heading = `${title} (${r.names.toLocaleString('en')} names, ${store})`;
    const kib = (bytes) => `${(bytes / 1024).toFixed(2)} KiB`;
    const { rss, heapUsed } = r.memoryPerNameBytes;
    const sni = r.sniLookupUs;
    const passes = r.maintenancePasses ?? {};
    const pass = (p) =>
      p ? `${ms(p.wallMs)} / ${ms(p.cpuMs)} (${p.recordReads} records read)` : 'skipped: no maintenance loop';
    out.push(
      row(
        heading,
        'first handshake served, from process start',
        ms(r.firstHandshakeServedMs),
        '< 1 s',
        r.firstHandshakeServedMs < 1000,
      ),
      row(heading, 'manage() of every stored name', ms(r.manageMs)),
      row(
        heading,
        'memory per name (none cached): RSS / JS heap',
        `${kib(rss)} / ${kib(heapUsed)}`,
        '< 2 KiB',
        Math.max(rss, heapUsed) < 2048,
      ),
      row(
        heading,
        'memory per cached certificate (context built): RSS / heap',
        `${kib(r.memoryPerCachedCertificateBytes.rss)} / ${kib(r.memoryPerCachedCertificateBytes.heapUsed)}`,
      ),
      row(
        heading,
        'handshake, name read from storage: p50 / p99',
        `${r.handshakeFromStorageMs.p50.toFixed(2)} / ${r.handshakeFromStorageMs.p99.toFixed(2)} ms`,
        'p99 < 10 ms',
        r.handshakeFromStorageMs.p99 < 10,
      ),
      row(
        heading,
        'handshake, cached name: p50 / p99',
        `${r.handshakeCachedMs.p50.toFixed(2)} / ${r.handshakeCachedMs.p99.toFixed(2)} ms`,
      ),
      row(
        heading,
        'SNI callback, read from storage: p50 / p99',
        `${(r.sniFromStorageUs.p50 / 1000).toFixed(2)} / ${(r.sniFromStorageUs.p99 / 1000).toFixed(2)} ms`,
      ),
      row(
        heading,
        'SNI lookup p50 / p99 (cached, context built)',
        `${sni.p50.toFixed(2)} / ${sni.p99.toFixed(2)} µs`,
        'p99 < 20 µs',
        sni.p99 < 20,
      ),
      row(
        heading,
        'maintenance pass, none due: wall / CPU',
        pass(passes.noneDue),
        '< 50 ms CPU',
        passes.noneDue ? passes.noneDue.cpuMs < 50 : undefined,
      ),
      row(heading, 'maintenance pass, 1 % due for a check: wall / CPU', pass(passes.onePercentDue)),
    );
  }
  return out;
}
