/**
 * @module bench/scenarios/first-certificate — ACME time per certificate against Pebble (no validation
 * sleep, no nonce rejection), fresh names one after another, autotls then Caddy against the same Pebble.
 */
import http from 'node:http';
import { acme, CertManager, silentLogger } from '../../packages/core/dist/index.js';
import { caddyInstalled, caddyObtainTimes, startCaddy } from '../lib/caddy.js';
import { freePort, makeTempDir, startChallTestSrv, startPebble } from '../lib/harness.js';
import { ms, range, row } from '../lib/report.js';
import { close, listen, pebbleRequestsDuring } from '../lib/servers.js';
import { summarize } from '../lib/stats.js';

/** 10 stays inside both clients' internal rate limiter (10 orders per 10 s), so no wait is measured. */
const NAMES = 10;

const freshNames = (prefix) => Array.from({ length: NAMES }, (_, i) => `${prefix}-${i + 1}.first.bench.test`);

export const title = 'first certificate';

export async function run({ log, withCaddy }) {
  const dns = await startChallTestSrv();
  const httpPort = await freePort();
  const pebble = await startPebble({ dnsServer: dns.dnsAddress, httpPort, nonceRejectPercent: 0 });
  try {
    log(`autotls: ${NAMES} certificates, one after another`);
    const autotls = await autotlsRun(pebble, freshNames('autotls'));
    let caddy;
    if (withCaddy) {
      log(`caddy: ${NAMES} certificates, one site added at a time`);
      caddy = await caddyRun(pebble, freshNames('caddy'));
    } else {
      log(
        caddyInstalled()
          ? 'caddy skipped (--skip-caddy)'
          : 'caddy is not installed: no comparison (apt-get install caddy)',
      );
    }
    return {
      autotls,
      caddy,
      ratio: caddy ? autotls.perCertificateMs.median / caddy.perCertificateMs.median : undefined,
    };
  } finally {
    await pebble.stop();
    await dns.stop();
  }
}

async function autotlsRun(pebble, names) {
  const manager = new CertManager({
    issuers: [acme({ directoryUrl: pebble.directoryUrl, ca: pebble.caPem })],
    storage: makeTempDir('autotls-bench-first-'),
    logger: silentLogger,
  });
  const server = http.createServer(manager.httpHandler());
  await listen(server, pebble.httpPort);
  const startedAt = new Map();
  const spans = new Map();
  let attempts = 0;
  manager.on('cert_obtaining', ({ identifier }) => {
    attempts++;
    startedAt.set(identifier, performance.now());
  });
  manager.on('cert_obtained', ({ identifier }) =>
    spans.set(identifier, performance.now() - startedAt.get(identifier)),
  );
  try {
    const requests = await pebbleRequestsDuring(pebble, async () => {
      for (const name of names) {
        await manager.manage([name]);
        await manager.ready([name]);
      }
    });
    return summary(names, spans, requests, { attempts });
  } finally {
    await manager.close();
    await close(server);
  }
}

async function caddyRun(pebble, names) {
  let caddy;
  let requests;
  try {
    requests = await pebbleRequestsDuring(pebble, async () => {
      caddy = await startCaddy({ pebble, firstName: names[0] });
      for (const name of names.slice(1)) await caddy.addSite(name);
    });
  } finally {
    await caddy?.stop();
  }
  const output = caddy.output();
  return summary(names, caddyObtainTimes(output), requests, {
    attempts: output.split('"msg":"obtaining certificate"').length - 1,
  });
}

function summary(names, spans, requests, extra) {
  const samples = names.map((name) => spans.get(name));
  if (samples.some((sample) => sample === undefined))
    throw new Error(`no span for ${names.filter((n) => !spans.has(n))}`);
  return {
    names: names.length,
    perCertificateMs: summarize(samples),
    firstCertificateMs: samples[0],
    samplesMs: samples,
    requestsPerCertificate: requests.total / names.length,
    requests: requests.total,
    requestsByRoute: requests.byRoute,
    ...extra,
  };
}

export function rows(r) {
  const requests = (x) => `${x.requestsPerCertificate.toFixed(1)} (${x.requests} for ${x.names})`;
  const autotls = `autotls: ACME time per certificate (median of ${r.autotls.names})`;
  if (!r.caddy) {
    const reason = caddyInstalled() ? 'skipped (--skip-caddy)' : 'skipped: caddy not installed';
    return [
      row(title, autotls, range(r.autotls.perCertificateMs)),
      row(title, 'autotls / Caddy', reason, '≤ 0.2×'),
      row(title, 'first certificate, incl. account registration', ms(r.autotls.firstCertificateMs)),
      row(title, 'requests to the CA per certificate', requests(r.autotls)),
    ];
  }
  return [
    row(title, autotls, range(r.autotls.perCertificateMs)),
    row(
      title,
      `Caddy: ACME time per certificate (median of ${r.caddy.names})`,
      range(r.caddy.perCertificateMs),
    ),
    row(title, 'autotls / Caddy', `${r.ratio.toFixed(2)}×`, '≤ 0.2×', r.ratio <= 0.2),
    row(
      title,
      'first certificate, incl. account registration',
      `${ms(r.autotls.firstCertificateMs)}; Caddy ${ms(r.caddy.firstCertificateMs)}`,
    ),
    row(title, 'requests to the CA per certificate', `${requests(r.autotls)}; Caddy ${requests(r.caddy)}`),
  ];
}
