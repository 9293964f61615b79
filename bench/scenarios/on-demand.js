/**
 * @module bench/scenarios/on-demand — names issued during their first handshake: 10 new names one after
 * another, ClientHello → handshake done, autotls then Caddy's `on_demand_tls` (both with an `ask`
 * endpoint) on the same Pebble, with HTTP-01 and with TLS-ALPN-01; then 50 concurrent handshakes for one
 * new name past autotls's new-name limit (one order expected, all 50 served).
 */
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { acme, CertManager, silentLogger } from '../../packages/core/dist/index.js';
import { startCaddyOnDemand } from '../lib/caddy.js';
import { delay, freePort, makeTempDir, startChallTestSrv, startPebble } from '../lib/harness.js';
import { ms, range, row } from '../lib/report.js';
import { close, listen, pebbleRequestsDuring } from '../lib/servers.js';
import { summarize } from '../lib/stats.js';

const NAMES = 10;
const QUICK_NAMES = 3;
/**
 * Both clients admit 10 orders per 10 s; the warm-up name's order plus 10 would make the last one wait, so
 * the timed names start once the warm-up's order has left the window.
 */
const RATE_WINDOW_MS = 10_000;
const CONCURRENT = 50;
const HANDSHAKE_TIMEOUT_MS = 60_000;
const CHALLENGES = ['http-01', 'tls-alpn-01'];

export const title = 'on-demand';

export async function run({ log, withCaddy, quick }) {
  const dns = await startChallTestSrv();
  const httpPort = await freePort();
  const pebble = await startPebble({ dnsServer: dns.dnsAddress, httpPort, nonceRejectPercent: 0 });
  const asked = [];
  const ask = http.createServer((req, res) => {
    asked.push(new URL(req.url ?? '/', 'http://x').searchParams.get('domain'));
    res.writeHead(200).end();
  });
  const askUrl = `http://127.0.0.1:${await listen(ask)}/ask`;
  try {
    const count = quick ? QUICK_NAMES : NAMES;
    const names = (prefix) =>
      Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}.on-demand.bench.test`);
    const pause = quick ? 0 : RATE_WINDOW_MS;
    const results = { names: count };
    for (const challenge of quick ? ['http-01'] : CHALLENGES) {
      const tag = challenge.replace(/-01$/, '');
      log(`autotls, ${challenge}: ${count} new names, one handshake each`);
      const autotls = await autotlsRun(pebble, askUrl, challenge, names(`a-${tag}`), pause);
      let caddy;
      if (withCaddy) {
        log(`caddy on_demand_tls, ${challenge}: ${count} new names`);
        caddy = await caddyRun(pebble, askUrl, challenge, names(`c-${tag}`), pause);
      }
      results[challenge] = {
        autotls,
        caddy,
        ratio: caddy ? autotls.handshakeMs.median / caddy.handshakeMs.median : undefined,
      };
    }
    log(`autotls: ${CONCURRENT} concurrent handshakes for one new name past the new-name limit`);
    results.concurrent = await concurrentRun(pebble, askUrl, quick ? 1_000 : 3_000);
    return results;
  } finally {
    await close(ask);
    await pebble.stop();
    await dns.stop();
  }
}

/** A manager with on-demand TLS behind HTTPS on Pebble's TLS-ALPN-01 port and HTTP on its HTTP-01 port. */
async function onDemandServer(pebble, askUrl, challenge, onDemand = {}) {
  const manager = new CertManager({
    issuers: [acme({ directoryUrl: pebble.directoryUrl, ca: pebble.caPem, challenges: [challenge] })],
    storage: makeTempDir('autotls-bench-on-demand-'),
    onDemand: { ask: askUrl, ...onDemand },
    logger: silentLogger,
  });
  const plain = http.createServer(manager.httpHandler());
  const secure = https.createServer(manager.httpsOptions(), (_req, res) => res.end('ok'));
  manager.attach(secure);
  await listen(plain, pebble.httpPort);
  await listen(secure, pebble.tlsPort);
  return {
    manager,
    async close() {
      await Promise.all([close(plain), close(secure)]);
      await manager.close();
    },
  };
}

/** ms from the ClientHello (connect) to the finished handshake; rejects when the server gives up. */
function timedHandshake(port, servername) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const elapsedMs = performance.now() - start;
      const subject = socket.getPeerCertificate().subjectaltname;
      socket.end();
      if (subject !== `DNS:${servername}`) reject(new Error(`${servername} got ${subject}`));
      else resolve(elapsedMs);
    });
    socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () => socket.destroy(new Error('handshake timed out')));
    socket.once('error', reject);
  });
}

async function sequential(port, list, spans = []) {
  const samples = [];
  for (const name of list) {
    const startMs = performance.now();
    samples.push(await timedHandshake(port, name));
    spans.push({ startMs, endMs: performance.now() });
  }
  return samples;
}

/** Every request to the CA while `run` goes: route, when it left and when its answer was read (ms). */
async function caRequestsDuring(pebble, run) {
  const started = new Map();
  const requests = [];
  const host = `127.0.0.1:${pebble.port}`;
  const onStart = ({ request }) => {
    if (request.getHeader('host') === host) started.set(request, performance.now());
  };
  const onFinish = ({ request }) => {
    const startMs = started.get(request);
    if (startMs === undefined) return;
    const route = request.path.split('/')[1] ?? '';
    requests.push({ route, startMs, endMs: performance.now() });
  };
  diagnostics.subscribe('http.client.request.start', onStart);
  diagnostics.subscribe('http.client.response.finish', onFinish);
  try {
    return { result: await run(), requests };
  } finally {
    diagnostics.unsubscribe('http.client.request.start', onStart);
    diagnostics.unsubscribe('http.client.response.finish', onFinish);
  }
}

/**
 * Where one certificate's handshake time goes, median over the names: each request to the CA (its round
 * trip) and the time between them (ours, or the CA validating), from the ClientHello to the handshake done.
 */
function breakdown(spans, requests) {
  const perName = spans.map(({ startMs, endMs }) => {
    const own = requests
      .filter((r) => r.startMs >= startMs && r.endMs <= endMs)
      .sort((a, b) => a.startMs - b.startMs);
    const steps = [];
    let at = startMs;
    for (const request of own) {
      steps.push({ step: `before ${request.route}`, ms: request.startMs - at });
      steps.push({ step: request.route, ms: request.endMs - request.startMs });
      at = request.endMs;
    }
    steps.push({ step: 'after the last request', ms: endMs - at });
    return steps;
  });
  // Names whose requests came in the same order (an extra poll changes it); the most common order is shown.
  const shapes = new Map();
  for (const steps of perName) {
    const shape = steps.map((step) => step.step).join(',');
    shapes.set(shape, [...(shapes.get(shape) ?? []), steps]);
  }
  const common = [...shapes.values()].sort((a, b) => b.length - a.length)[0] ?? [];
  return {
    names: common.length,
    of: perName.length,
    steps: (common[0] ?? []).map(({ step }, i) => ({
      step,
      medianMs: summarize(common.map((steps) => steps[i].ms)).median,
    })),
  };
}

async function autotlsRun(pebble, askUrl, challenge, list, pauseMs) {
  // The new-name limit (10 a minute) is not what is measured here: the warm-up name would make one wait.
  const server = await onDemandServer(pebble, askUrl, challenge, { maxNewNames: 100 });
  const startedAt = new Map();
  const obtainMs = [];
  server.manager.on('cert_obtaining', ({ identifier }) => startedAt.set(identifier, performance.now()));
  server.manager.on('cert_obtained', ({ identifier }) =>
    obtainMs.push(performance.now() - startedAt.get(identifier)),
  );
  try {
    // The account is registered by a first name not counted, as in the `first` scenario's steady state.
    await timedHandshake(pebble.tlsPort, `warm-${list[0]}`);
    await delay(pauseMs);
    const spans = [];
    const timeline = await caRequestsDuring(pebble, () =>
      pebbleRequestsDuring(pebble, () => sequential(pebble.tlsPort, list, spans)),
    );
    const requests = timeline.result;
    return {
      handshakeMs: summarize(requests.result),
      obtainMs: summarize(obtainMs.slice(1)),
      whereTimeGoes: breakdown(spans, timeline.requests),
      samplesMs: requests.result,
      requestsPerCertificate: requests.total / list.length,
      requestsByRoute: requests.byRoute,
    };
  } finally {
    await server.close();
  }
}

async function caddyRun(pebble, askUrl, challenge, list, pauseMs) {
  const caddy = await startCaddyOnDemand({ pebble, askUrl, challenge });
  try {
    // Caddy answers on its admin port before its HTTPS listener is up.
    for (let attempt = 1; ; attempt++) {
      try {
        await timedHandshake(pebble.tlsPort, `warm-${list[0]}`);
        break;
      } catch (error) {
        if (attempt >= 50) throw error;
        await delay(100);
      }
    }
    await delay(pauseMs);
    const requests = await pebbleRequestsDuring(pebble, () => sequential(pebble.tlsPort, list));
    return {
      handshakeMs: summarize(requests.result),
      samplesMs: requests.result,
      requestsPerCertificate: requests.total / list.length,
      requestsByRoute: requests.byRoute,
    };
  } finally {
    await caddy.stop();
  }
}

/** A limit of one new name per window: the first name takes it, so the crowd's name waits in line. */
async function concurrentRun(pebble, askUrl, windowMs) {
  const server = await onDemandServer(pebble, askUrl, 'http-01', { maxNewNames: 1, windowMs });
  const orders = () => pebble.requestLog().filter((line) => line.route.includes('order-plz')).length;
  try {
    await timedHandshake(pebble.tlsPort, 'first.crowd.on-demand.bench.test');
    const ordersBefore = orders();
    const start = performance.now();
    const outcomes = await Promise.allSettled(
      Array.from({ length: CONCURRENT }, () => timedHandshake(pebble.tlsPort, 'crowd.on-demand.bench.test')),
    );
    const served = outcomes.filter((outcome) => outcome.status === 'fulfilled').map((o) => o.value);
    return {
      handshakes: CONCURRENT,
      completed: served.length,
      orders: orders() - ordersBefore,
      wallMs: performance.now() - start,
      handshakeMs: served.length > 0 ? summarize(served) : undefined,
    };
  } finally {
    await server.close();
  }
}

export function rows(r) {
  const out = [];
  for (const challenge of CHALLENGES) {
    const c = r[challenge];
    if (!c) continue;
    const heading = `${title} (${r.names} new names, ${challenge})`;
    out.push(
      row(heading, 'autotls: ClientHello → handshake done', range(c.autotls.handshakeMs)),
      row(heading, 'autotls: cert_obtaining → cert_obtained', range(c.autotls.obtainMs)),
    );
    if (c.caddy) {
      out.push(
        row(heading, 'Caddy on_demand_tls: ClientHello → handshake done', range(c.caddy.handshakeMs)),
        row(heading, 'autotls / Caddy (medians)', `${c.ratio.toFixed(3)}×`, '≤ 0.10×', c.ratio <= 0.1),
      );
    }
    const caddyRequests = c.caddy ? `; Caddy ${c.caddy.requestsPerCertificate.toFixed(1)}` : '';
    out.push(
      row(
        heading,
        'requests to the CA per certificate',
        `${c.autotls.requestsPerCertificate.toFixed(1)}${caddyRequests}`,
      ),
    );
  }
  const crowd = r.concurrent;
  out.push(
    row(
      `${title} (${crowd.handshakes} concurrent, one name past the limit)`,
      'handshakes completed / orders',
      `${crowd.completed} / ${crowd.orders} in ${ms(crowd.wallMs)}`,
      `${crowd.handshakes} / 1`,
      crowd.completed === crowd.handshakes && crowd.orders === 1,
    ),
  );
  return out;
}
