// One instance of a clustered app, run as its own process by test/support/cluster.ts: a CertManager on shared
// storage (Redis, a Redis Cluster or a directory) with its own plain-HTTP and HTTPS listeners. Commands arrive
// on a control port (POST /manage, GET /state, POST /close); events and log lines leave on stdout as JSON lines.
import http from 'node:http';
import https from 'node:https';
import KeyvRedis, { createCluster } from '@keyv/redis';
import { Keyv } from 'keyv';
import { acme, CertManager } from '../../packages/core/dist/index.js';

const config = JSON.parse(process.env.AUTOTLS_INSTANCE ?? '{}');
const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);

const logger = (() => {
  const make = (bindings) => {
    const at = (level) => (fields, msg) => {
      const error = fields?.error;
      print({
        log: level,
        ...bindings,
        ...fields,
        ...(error instanceof Error ? { error: error.message } : {}),
        msg,
      });
    };
    return {
      debug() {},
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return make({});
})();

function storage() {
  if (config.storage.directory) return config.storage.directory;
  if (config.storage.cluster) {
    return new Keyv(
      new KeyvRedis(createCluster({ rootNodes: config.storage.cluster.map((url) => ({ url })) })),
    );
  }
  return new Keyv(new KeyvRedis(config.storage.redis));
}

const manager = new CertManager({
  issuers: [acme({ directoryUrl: config.directoryUrl, ca: config.caPem, challenges: ['http-01'] })],
  storage: storage(),
  logger,
  retry: { intervalsMs: config.retryIntervalsMs ?? [1000] },
  ...(config.locks ? { locks: config.locks } : {}),
  ...(config.storageTimeoutMs ? { storageTimeoutMs: config.storageTimeoutMs } : {}),
  ...(config.rateLimit ? { rateLimit: config.rateLimit } : {}),
  ...(config.renewal ? { renewal: config.renewal } : {}),
});
const obtained = [];
let failed = 0;
for (const event of ['cert_obtained', 'cert_failed', 'cert_giving_up']) {
  manager.on(event, (fields) => {
    if (event === 'cert_obtained') obtained.push(fields.identifier);
    if (event === 'cert_failed') failed++;
    print({
      event,
      ...fields,
      ...(fields.error ? { error: String(fields.error?.message ?? fields.error) } : {}),
    });
  });
}

const plain = http.createServer(manager.httpHandler());
const secure = https.createServer(manager.httpsOptions(), (_req, res) => res.end('ok'));
manager.attach(secure);
const control = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://control');
  const started = Date.now();
  const answer = (body) => res.setHeader('content-type', 'application/json').end(JSON.stringify(body));
  if (url.pathname === '/manage') {
    await manager.manage(url.searchParams.getAll('name'));
    answer({ ms: Date.now() - started });
  } else if (url.pathname === '/state') {
    const names = url.searchParams.getAll('name');
    const serials = Object.fromEntries(
      names.map((name) => [name, manager.getCertificate(name)?.serialNumber ?? null]),
    );
    answer({ obtained, failed, serials });
  } else if (url.pathname === '/close') {
    await manager.close();
    answer({ ms: Date.now() - started });
    for (const server of [plain, secure, control]) server.close();
    secure.closeAllConnections();
    setTimeout(() => process.exit(0), 50).unref();
  } else res.writeHead(404).end();
});
await Promise.all(
  [
    [plain, config.httpPort],
    [secure, config.httpsPort],
    [control, config.controlPort],
  ].map(([server, port]) => new Promise((resolve) => server.listen(port, '127.0.0.1', resolve))),
);
print({ listening: true });
