// The documented forms, type-checked as a user's TypeScript project would (skipLibCheck: false).
import http from 'node:http';
import https from 'node:https';
import { CertManager, createManager, internal, letsEncrypt } from '@autotls/core';
import { autoTls as expressTls } from '@autotls/express';
import { autoTls as fastifyTls, httpsOptions } from '@autotls/fastify';
import { autoTls as koaTls } from '@autotls/koa';
import KeyvRedis from '@keyv/redis';
import express from 'express';
import Fastify from 'fastify';
import Keyv from 'keyv';
import Koa from 'koa';

export async function expressApp(): Promise<void> {
  const tls = expressTls({ domains: ['example.com'], email: 'you@example.com' });
  const app = express();
  app.use(tls);
  app.get('/', (_req, res) => res.send('hello'));
  const servers = await tls.listen(app, { httpPort: 80, httpsPort: 443 });
  await servers.close();
}

export async function koaApp(): Promise<void> {
  const tls = koaTls({
    domains: ['example.com'],
    storage: new Keyv(new KeyvRedis('redis://127.0.0.1:6379')),
  });
  const app = new Koa();
  app.use(tls);
  await tls.listen(app, { httpPort: 80, httpsPort: 443 });
}

export async function fastifyApp(): Promise<void> {
  const manager = createManager({ domains: ['example.com'], issuers: [letsEncrypt({ staging: true })] });
  const app = Fastify({ https: httpsOptions(manager) });
  await app.register(fastifyTls, { manager, httpPort: 80 });
  const served: CertManager = app.autoTls;
  await served.ready(['example.com']);
  await app.listen({ port: 443, host: '::' });
}

export async function anyServer(): Promise<void> {
  const manager = new CertManager({ issuers: [internal()], storage: new Keyv() });
  http.createServer(manager.httpHandler()).listen(80);
  const server = https.createServer(manager.httpsOptions(), (_req, res) => res.end('hello')).listen(443);
  manager.attach(server);
  await manager.manage(['localhost']);
}
