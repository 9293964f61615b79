/**
 * @module bench/scenarios/many-names — 200 names (20 with --quick) managed at once against Pebble: wall time
 * until every certificate is cached, requests to the CA per certificate, and whether the internal rate
 * limiter held (no more than its 10 new orders in any 10 s window).
 */
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import { acme, CertManager } from '../../packages/core/dist/index.js';
import { captureLogger, freePort, makeTempDir, startChallTestSrv, startPebble } from '../lib/harness.js';
import { ms, row } from '../lib/report.js';
import { close, listen, pebbleRequestsDuring } from '../lib/servers.js';

/** The manager's default (Caddy's figure), which this scenario checks from the outside. */
const ORDERS_PER_WINDOW = 10;
const WINDOW_MS = 10_000;
/**
 * The limiter stamps an order when it admits it; the order leaves a little later (nonce, JWS), more so in
 * the first burst. On the wire a window can therefore look that much shorter: allowed, and reported.
 */
const SEND_JITTER_MS = 250;

export const title = 'many names';

export async function run({ quick, log }) {
  const count = quick ? 20 : 200;
  const names = Array.from({ length: count }, (_, i) => `m${i + 1}.many.bench.test`);
  const dns = await startChallTestSrv();
  const httpPort = await freePort();
  const pebble = await startPebble({ dnsServer: dns.dnsAddress, httpPort, nonceRejectPercent: 0 });
  const logger = captureLogger(false);
  const manager = new CertManager({
    issuers: [acme({ directoryUrl: pebble.directoryUrl, ca: pebble.caPem })],
    storage: makeTempDir('autotls-bench-many-'),
    logger,
  });
  const server = http.createServer(manager.httpHandler());
  await listen(server, httpPort);
  // When each new order leaves this process (ms precision; Pebble's log has whole seconds).
  const orderTimesMs = [];
  const onRequest = ({ request }) => {
    if (
      request.method === 'POST' &&
      request.path === '/order-plz' &&
      request.getHeader('host') === `127.0.0.1:${pebble.port}`
    ) {
      orderTimesMs.push(performance.now());
    }
  };
  diagnostics.subscribe('http.client.request.start', onRequest);
  let failures = 0;
  manager.on('cert_failed', () => failures++);
  try {
    log(
      `${count} names at once; the rate limiter admits ${ORDERS_PER_WINDOW} orders per ${WINDOW_MS / 1000} s`,
    );
    const startMs = performance.now();
    const requests = await pebbleRequestsDuring(pebble, async () => {
      await manager.manage(names);
      await manager.ready(names);
    });
    const wallMs = performance.now() - startMs;
    const lowerBoundMs = (Math.ceil(count / ORDERS_PER_WINDOW) - 1) * WINDOW_MS;
    return {
      names: count,
      wallMs,
      limiterLowerBoundMs: lowerBoundMs,
      overheadBeyondLimiterMs: wallMs - lowerBoundMs,
      requestsPerCertificate: requests.total / count,
      requests: requests.total,
      requestsByRoute: requests.byRoute,
      failedAttempts: failures,
      orders: orderTimesMs.length,
      maxOrdersInAnyWindow: maxInWindow(orderTimesMs, WINDOW_MS),
      tightestSpanOf11OrdersMs: tightestSpan(orderTimesMs, ORDERS_PER_WINDOW + 1),
      pebbleLogConsistent: pebbleOrdersRespectWindow(pebble.output(), ORDERS_PER_WINDOW, WINDOW_MS),
      limiterWaitLogs: logger.find('waiting on internal rate limiter').length,
    };
  } finally {
    diagnostics.unsubscribe('http.client.request.start', onRequest);
    await manager.close();
    await close(server);
    await pebble.stop();
    await dns.stop();
  }
}

/** The most events inside any half-open window [t, t + windowMs) starting at an event. */
function maxInWindow(times, windowMs) {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (j < sorted.length && sorted[j] < sorted[i] + windowMs) j++;
    best = Math.max(best, j - i);
  }
  return best;
}

/** The shortest time spanned by `k` consecutive events (≥ the window means at most k−1 fit in one). */
function tightestSpan(times, k) {
  const sorted = [...times].sort((a, b) => a - b);
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i + k - 1 < sorted.length; i++) best = Math.min(best, sorted[i + k - 1] - sorted[i]);
  return Number.isFinite(best) ? best : undefined;
}

/**
 * Pebble's own view, to whole seconds: if no window held more than `limit` orders, then any `limit + 1`
 * consecutive orders span at least the window, so their truncated timestamps differ by ≥ the window too.
 */
function pebbleOrdersRespectWindow(output, limit, windowMs) {
  const seconds = [
    ...output.matchAll(/^Pebble (\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d) POST \/order-plz /gm),
  ].map(([, y, mo, d, h, mi, s]) => new Date(+y, +mo - 1, +d, +h, +mi, +s).getTime());
  for (let i = 0; i + limit < seconds.length; i++) {
    if (seconds[i + limit] - seconds[i] < windowMs) return false;
  }
  return true;
}

export function rows(r) {
  const heading = `${title} (${r.names})`;
  const span = r.tightestSpanOf11OrdersMs;
  return [
    row(
      heading,
      'wall time until every certificate is cached',
      ms(r.wallMs),
      `≥ ${ms(r.limiterLowerBoundMs)} (limiter)`,
    ),
    row(
      heading,
      'requests to the CA per certificate',
      `${r.requestsPerCertificate.toFixed(2)} (${r.requests} for ${r.names})`,
    ),
    row(
      heading,
      `rate limiter: shortest span of any ${ORDERS_PER_WINDOW + 1} orders (wire)`,
      span === undefined ? `n/a (≤ ${ORDERS_PER_WINDOW} orders)` : ms(span),
      `≥ ${WINDOW_MS / 1000} s − ${SEND_JITTER_MS} ms`,
      span === undefined || span >= WINDOW_MS - SEND_JITTER_MS,
    ),
    row(
      heading,
      `rate limiter: ≤ ${ORDERS_PER_WINDOW} orders per ${WINDOW_MS / 1000} s in Pebble's log`,
      r.pebbleLogConsistent ? 'yes' : 'no',
      'yes',
      r.pebbleLogConsistent,
    ),
    row(
      heading,
      'failed attempts / "waiting on internal rate limiter" logs',
      `${r.failedAttempts} / ${r.limiterWaitLogs}`,
    ),
  ];
}
