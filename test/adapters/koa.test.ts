import type { AddressInfo } from 'node:net';
import { autoTls } from '@autotls/koa';
import Koa from 'koa';
import { runAdapterConformance } from './conformance.js';

runAdapterConformance('koa', async ({ options, httpPort, httpsPort, host, app }) => {
  const tls = autoTls(options);
  const server = new Koa();
  server.use(tls);
  server.use((ctx) => {
    const answer = app({ method: ctx.method, url: ctx.originalUrl, secure: ctx.secure });
    ctx.status = answer.status;
    ctx.set(answer.headers);
    ctx.body = answer.body;
  });
  const servers = await tls.listen(server, { httpPort, httpsPort, host });
  const port = (servers.https.address() as AddressInfo).port;
  return { httpPort, httpsPort: port, manager: tls.manager, close: servers.close };
});
