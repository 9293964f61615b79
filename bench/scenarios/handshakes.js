/**
 * @module bench/scenarios/handshakes — new TLS handshakes per second through an autotls-managed server
 * (`https.createServer(manager.httpsOptions())`: SNICallback + cache) against a plain `https.createServer`
 * with the same certificate and key, and against a server whose SNICallback returns one static context
 * (what Node's SNI mechanism costs by itself): same server process, same clients, alternating rounds. The
 * server process gets a core of its own (taskset) where there are two; the clients share the other.
 */
import { execFileSync, fork } from 'node:child_process';
import { once } from 'node:events';
import os from 'node:os';
import { commandExists, makeTempDir } from '../lib/harness.js';
import { row } from '../lib/report.js';
import { summarize } from '../lib/stats.js';

const SERVERNAME = 'handshake.bench.test';
/**
 * A Node TLS client spends more CPU per handshake than the server (about 1.5× here: it also verifies the
 * server's signature), so the clients, not the server, set the pace on two cores. Hence the second
 * figure: the server's CPU time per handshake, whose ratio is the servers' capacity ratio.
 */
const CLIENTS = 2;
const CONCURRENCY_PER_CLIENT = 8;

export const title = 'handshakes';

const SERVERS = ['autotls', 'staticSni', 'plain'];

export async function run({ quick, log }) {
  const rounds = quick ? 6 : 30;
  const roundMs = quick ? 300 : 1_000;
  const warmupMs = quick ? 200 : 700;

  const script = (name) => new URL(`./${name}`, import.meta.url);
  const config = { servername: SERVERNAME, storage: makeTempDir('autotls-bench-hs-') };
  const server = fork(script('handshake-server.js'), {
    env: { ...process.env, AUTOTLS_BENCH_HANDSHAKE: JSON.stringify(config) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const clients = Array.from({ length: CLIENTS }, () =>
    fork(script('handshake-client.js'), { stdio: 'inherit' }),
  );
  const children = [server, ...clients];
  try {
    const [{ ports }] = await once(server, 'message');
    const pinned = pin(server, clients);
    log(
      pinned ? 'server pinned to CPU 0, clients to CPU 1' : 'processes not pinned (needs taskset and 2 CPUs)',
    );
    const serverCpuMs = async () => {
      server.send('cpu');
      const [{ cpu }] = await once(server, 'message');
      return (cpu.user + cpu.system) / 1000;
    };
    const round = async (which, durationMs) => {
      const cpuBefore = await serverCpuMs();
      const request = {
        port: ports[which],
        servername: SERVERNAME,
        durationMs,
        concurrency: CONCURRENCY_PER_CLIENT,
      };
      for (const client of clients) client.send(request);
      const results = await Promise.all(clients.map(async (client) => (await once(client, 'message'))[0]));
      const cpuMs = (await serverCpuMs()) - cpuBefore;
      const handshakes = results.reduce((sum, r) => sum + r.handshakes, 0);
      const errors = results.reduce((sum, r) => sum + r.errors, 0);
      const elapsedMs = Math.max(...results.map((r) => r.elapsedMs));
      const clientCpuMs = results.reduce((sum, r) => sum + r.cpuMs, 0);
      return {
        handshakes,
        errors,
        elapsedMs,
        perSecond: (handshakes / durationMs) * 1000,
        serverCpu: cpuMs / elapsedMs,
        serverCpuPerHandshakeUs: (cpuMs * 1000) / handshakes,
        clientCpu: clientCpuMs / elapsedMs,
      };
    };

    for (const which of SERVERS) await round(which, warmupMs);
    // ABCCBA order, so a slow drift of the machine's load does not favour one server.
    const cycle = [...SERVERS, ...[...SERVERS].reverse()];
    const order = Array.from({ length: rounds }, (_, i) => cycle[i % cycle.length]);
    const results = Object.fromEntries(SERVERS.map((which) => [which, []]));
    for (const which of order) {
      const result = await round(which, roundMs);
      if (result.errors > 0) throw new Error(`${which}: ${result.errors} handshakes failed`);
      results[which].push(result);
      const percent = (share) => `${Math.round(share * 100)}%`;
      const cpu = `CPU: server ${percent(result.serverCpu)} (${Math.round(result.serverCpuPerHandshakeUs)} µs/handshake), clients ${percent(result.clientCpu)}`;
      log(`${which.padEnd(9)} ${Math.round(result.perSecond)} handshakes/s (${cpu})`);
    }
    const figures = (which) => ({
      perSecond: summarize(results[which].map((r) => r.perSecond)),
      serverCpu: summarize(results[which].map((r) => r.serverCpu)),
      serverCpuPerHandshakeUs: summarize(results[which].map((r) => r.serverCpuPerHandshakeUs)),
      rounds: results[which],
    });
    const autotls = figures('autotls');
    const plain = figures('plain');
    const staticSni = figures('staticSni');
    server.send('close');
    return {
      clients: CLIENTS,
      concurrencyPerClient: CONCURRENCY_PER_CLIENT,
      pinned,
      roundMs,
      order,
      keyType: 'ecdsa-p256',
      autotls,
      plain,
      staticSni,
      ratio: autotls.perSecond.median / plain.perSecond.median,
      cpuRatio: plain.serverCpuPerHandshakeUs.median / autotls.serverCpuPerHandshakeUs.median,
      staticSniRatio: staticSni.perSecond.median / plain.perSecond.median,
      staticSniCpuRatio: plain.serverCpuPerHandshakeUs.median / staticSni.serverCpuPerHandshakeUs.median,
    };
  } finally {
    for (const client of clients) if (client.connected) client.send('exit');
    await Promise.all(
      children.map((child) => {
        if (child.exitCode !== null || child.signalCode !== null) return undefined;
        const exited = once(child, 'exit');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        return exited.finally(() => clearTimeout(timer));
      }),
    );
  }
}

/** Server on CPU 0, clients on CPU 1, so they do not take turns on one core; false when not possible. */
function pin(server, clients) {
  if (os.availableParallelism() < 2 || !commandExists('taskset')) return false;
  const taskset = (cpu, pid) =>
    execFileSync('taskset', ['-a', '-p', '-c', cpu, String(pid)], { stdio: 'ignore' });
  taskset('0', server.pid);
  for (const client of clients) taskset('1', client.pid);
  return true;
}

export function rows(r) {
  const perSecond = (summary) =>
    `${Math.round(summary.median)}/s (min ${Math.round(summary.min)}, max ${Math.round(summary.max)})`;
  const cpu = (x) => `${Math.round(x.serverCpuPerHandshakeUs.median)} µs`;
  const n = r.autotls.perSecond.n;
  return [
    row(title, `autotls-managed server (median of ${n} rounds)`, perSecond(r.autotls.perSecond)),
    row(title, `plain https server, static certificate (${n})`, perSecond(r.plain.perSecond)),
    row(title, `control: SNICallback → one static context (${n})`, perSecond(r.staticSni.perSecond)),
    row(
      title,
      'autotls / plain, handshakes per second',
      `${r.ratio.toFixed(3)}×`,
      '≥ 0.97×',
      r.ratio >= 0.97,
    ),
    row(title, 'control / plain, handshakes per second', `${r.staticSniRatio.toFixed(3)}×`),
    row(
      title,
      'server CPU per handshake: autotls / control / plain',
      `${cpu(r.autotls)} / ${cpu(r.staticSni)} / ${cpu(r.plain)}`,
    ),
    row(
      title,
      'capacity (plain CPU ÷ CPU per handshake): autotls; control',
      `${r.cpuRatio.toFixed(3)}×; ${r.staticSniCpuRatio.toFixed(3)}×`,
      '≥ 0.97×',
      r.cpuRatio >= 0.97,
    ),
  ];
}
