/**
 * @module bench/scenarios/handshake-server — the servers of the handshake scenario, alone in their process,
 * all with the same certificate and key: `https.createServer(manager.httpsOptions())` with TLS-ALPN-01
 * attached, as the adapters serve it (autotls: ClientHello peek, SNICallback + cache), a plain `https.createServer({ cert, key })`, and one whose SNICallback always hands back one
 * static context (Node's SNI mechanism without autotls). Reports its ports, then its CPU time on request.
 */
import https from 'node:https';
import tls from 'node:tls';
import { CertManager, internal, silentLogger } from '../../packages/core/dist/index.js';
import { close, listen } from '../lib/servers.js';

const { servername, storage } = JSON.parse(process.env.AUTOTLS_BENCH_HANDSHAKE);
const manager = new CertManager({ issuers: [internal()], storage, logger: silentLogger });
await manager.manage([servername]);
await manager.ready([servername]);
const { certificatePem, privateKeyPem } = manager.cache.get(servername);
const respond = (_req, res) => res.end('ok');
const managed = https.createServer(manager.httpsOptions(), respond);
// As the adapters serve it: TLS-ALPN-01 on the same port (every ClientHello is peeked at).
manager.attach(managed);
const plain = https.createServer({ cert: certificatePem, key: privateKeyPem }, respond);
const context = tls.createSecureContext({ cert: certificatePem, key: privateKeyPem });
const staticSni = https.createServer({ SNICallback: (_name, callback) => callback(null, context) }, respond);
const servers = [managed, plain, staticSni];
process.send({
  ports: { autotls: await listen(managed), plain: await listen(plain), staticSni: await listen(staticSni) },
});

process.on('message', async (message) => {
  if (message === 'cpu') return process.send({ cpu: process.cpuUsage() });
  if (message === 'close') {
    await Promise.all(servers.map(close));
    await manager.close();
    process.disconnect();
  }
});
