// One adapter (argv[2]: express | koa | fastify | core) serving NAME over HTTPS on a free port, from the
// installed tarballs. The CA comes from AUTOTLS_ACME_CA (the default issuers' override), HTTP-01 is
// answered on HTTP_PORT, storage is STORAGE: a directory, or a redis:// URL for Keyv on @keyv/redis.
// Domains are given to the manager only, never to the adapter: the form the issue found broken.
import http from 'node:http';
import https from 'node:https';
import { CertManager, createManager } from '@autotls/core';
import KeyvRedis from '@keyv/redis';
import Keyv from 'keyv';

const [adapter] = process.argv.slice(2);
const name = process.env.NAME;
const httpPort = Number(process.env.HTTP_PORT);
const storage = process.env.STORAGE.startsWith('redis://')
  ? new Keyv(new KeyvRedis(process.env.STORAGE), { namespace: 'autotls' })
  : process.env.STORAGE;
const host = '127.0.0.1';

async function express() {
  const { autoTls } = await import('@autotls/express');
  const { default: express } = await import('express');
  const tls = autoTls({ manager: createManager({ domains: [name], storage }) });
  const app = express();
  app.use(tls);
  app.get('/', (_req, res) => res.send('hello'));
  const servers = await tls.listen(app, { httpPort, httpsPort: 0, host });
  return { manager: tls.manager, port: servers.https.address().port };
}

async function koa() {
  const { autoTls } = await import('@autotls/koa');
  const { default: Koa } = await import('koa');
  const tls = autoTls({ domains: [name], storage });
  const app = new Koa();
  app.use(tls);
  app.use((ctx) => {
    ctx.body = 'hello';
  });
  const servers = await tls.listen(app, { httpPort, httpsPort: 0, host });
  return { manager: tls.manager, port: servers.https.address().port };
}

async function fastify() {
  const { autoTls, httpsOptions } = await import('@autotls/fastify');
  const { default: Fastify } = await import('fastify');
  const manager = createManager({ domains: [name], storage });
  const app = Fastify({ https: httpsOptions(manager) });
  await app.register(autoTls, { manager, httpPort, host });
  await app.listen({ port: 0, host });
  return { manager, port: app.server.address().port };
}

async function core() {
  const manager = new CertManager({ storage });
  http.createServer(manager.httpHandler()).listen(httpPort, host);
  const server = https.createServer(manager.httpsOptions(), (_req, res) => res.end('hello'));
  await new Promise((resolve) => server.listen(0, host, resolve));
  manager.attach(server);
  await manager.manage([name]);
  return { manager, port: server.address().port };
}

const { manager, port } = await { express, koa, fastify, core }[adapter]();
await manager.ready([name]);
console.log(`serving ${port}`);
