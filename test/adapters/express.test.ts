import type { AddressInfo } from 'node:net';
import { autoTls } from '@autotls/express';
import express from 'express';
import { runAdapterConformance } from './conformance.js';

runAdapterConformance('express', async ({ options, httpPort, httpsPort, host, app }) => {
  const tls = autoTls(options);
  const server = express();
  server.use(tls);
  server.use((req, res) => {
    const answer = app({ method: req.method, url: req.originalUrl, secure: req.secure });
    res.status(answer.status).set(answer.headers).send(answer.body);
  });
  const servers = await tls.listen(server, { httpPort, httpsPort, host });
  const port = (servers.https.address() as AddressInfo).port;
  return { httpPort, httpsPort: port, manager: tls.manager, close: servers.close };
});
