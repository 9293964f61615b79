/**
 * @module bench/scenarios/scale — N managed names already in storage (10,000; 1,000 with --quick): memory
 * per name, SNI lookup latency, time from process start until the first handshake is served, and one
 * maintenance pass. The server runs in its own process; this one seeds the store and probes handshakes.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import https from 'node:https';
import { delay, freePort, makeTempDir } from '../lib/harness.js';
import { ms, row } from '../lib/report.js';
import { scaleNames, seedFileStore } from '../lib/scale-fixture.js';
import { percentile } from '../lib/stats.js';

const PROBE_TIMEOUT_MS = 120_000;

export const title = 'scale';

export async function run({ quick, log }) {
  const count = quick ? 1_000 : 10_000;
  const names = scaleNames(count);
  const directory = makeTempDir('autotls-bench-scale-');
  const seeding = await seedFileStore(directory, names);
  const seedMs = (seeding.templateMs + seeding.signingMs + seeding.writingMs).toFixed(0);
  log(
    `seeded ${count} certificates in ${seedMs} ms (signing ${seeding.signingMs.toFixed(0)}, writing ${seeding.writingMs.toFixed(0)})`,
  );

  const port = await freePort();
  const spawnedAt = performance.now();
  const child = fork(new URL('./scale-server.js', import.meta.url), {
    execArgv: ['--expose-gc'],
    env: {
      ...process.env,
      AUTOTLS_BENCH_SCALE: JSON.stringify({ directory, count, port, lookups: quick ? 20_000 : 200_000 }),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit');
  const report = once(child, 'message');
  try {
    // A visitor asks for the first name in the list, another for the last one, from the moment it starts.
    const [first, last] = await Promise.all([
      probe(port, names[0], spawnedAt),
      probe(port, names.at(-1), spawnedAt),
    ]);
    child.send('probed');
    const died = exited.then(([code, signal]) =>
      Promise.reject(new Error(`scale server exited (${code ?? signal})`)),
    );
    const [result] = await Promise.race([report, died]);
    child.disconnect(); // it exits once we let go
    await exited;
    return { ...summary(result, { first, last, count }), seedingMs: seeding };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
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

function summary(result, { first, last, count }) {
  const micros = (samples) => {
    const sorted = Float64Array.from(samples).sort();
    return {
      p50: percentile(sorted, 50) / 1000,
      p99: percentile(sorted, 99) / 1000,
      max: sorted.at(-1) / 1000,
    };
  };
  const perName = (field) => (result.memoryAfter[field] - result.memoryBefore[field]) / count;
  return {
    names: count,
    manageMs: result.manageMs,
    timelineMs: result.timelineMs,
    firstHandshakeServedMs: result.firstHandshake?.ms,
    firstHandshakeName: result.firstHandshake?.servername,
    probeFirstNameMs: first.ms,
    probeLastNameMs: last.ms,
    memoryPerNameBytes: { rss: perName('rss'), heapUsed: perName('heapUsed'), external: perName('external') },
    memoryBefore: result.memoryBefore,
    memoryAfter: result.memoryAfter,
    sniLookupUs: { ...micros(result.sniNs), lookups: result.lookups, misses: result.misses },
    cacheGetUs: micros(result.cacheNs),
    contextBuildUs: micros(result.contextBuildNs),
    timerOverheadUs: micros(result.timerNs),
    maintenancePass: result.maintenancePass,
  };
}

export function rows(r) {
  const heading = `${title} (${r.names.toLocaleString('en')} names)`;
  const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
  const { rss, heapUsed } = r.memoryPerNameBytes;
  const sni = r.sniLookupUs;
  const pass = r.maintenancePass;
  return [
    row(
      heading,
      'first handshake served, from process start',
      ms(r.firstHandshakeServedMs),
      '< 1 s',
      r.firstHandshakeServedMs < 1000,
    ),
    row(heading, 'manage() of every stored name', ms(r.manageMs)),
    row(heading, 'memory per name: RSS / JS heap', `${kib(rss)} / ${kib(heapUsed)}`),
    row(
      heading,
      'SNI lookup p50 / p99 (context built)',
      `${sni.p50.toFixed(2)} / ${sni.p99.toFixed(2)} µs`,
      'p99 < 20 µs',
      sni.p99 < 20,
    ),
    row(
      heading,
      "a name's first handshake: TLS context built, p50",
      `${r.contextBuildUs.p50.toFixed(0)} µs (once per name, then cached)`,
    ),
    pass
      ? row(heading, 'one maintenance pass (none due): wall / CPU', `${ms(pass.wallMs)} / ${ms(pass.cpuMs)}`)
      : row(heading, 'one maintenance pass', 'skipped: no maintenance loop'),
  ];
}
