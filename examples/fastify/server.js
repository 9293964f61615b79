// Fastify over HTTPS with certificates managed by autotls.
// With no configuration it serves https://localhost and https://127.0.0.1 from the internal CA (like Caddy),
// storing its data in $AUTOTLS_DATA or your user data directory. For a public site set DOMAINS and EMAIL
// and use ports 80/443.
import {
  createManager,
  defaultDataDirectory,
  isInternalName,
  ListenError,
  localRootPath,
} from '@autotls/core';
import { autoTls, httpsOptions } from '@autotls/fastify';
import Fastify from 'fastify';
import { exitOnListenError, printServing } from '../first-run.js';

const domains = (process.env.DOMAINS ?? 'localhost,127.0.0.1').split(',');
const localRoot = domains.some(isInternalName) ? localRootPath(defaultDataDirectory()) : undefined;
const httpsPort = Number(process.env.HTTPS_PORT ?? 8443);
const httpPort = Number(process.env.HTTP_PORT ?? 8080);

// One manager for both: its certificates go to Fastify's server, the plugin answers challenges with it.
const manager = createManager({ domains, email: process.env.EMAIL });
const app = Fastify({ https: httpsOptions(manager) });
await app.register(autoTls, { manager, httpPort });
app.get('/', async (request) => {
  const scheme = request.protocol === 'https' ? 'HTTPS' : 'HTTP';
  return `Hello over ${scheme} from ${request.hostname}\n`;
});

// Runs after the plugin's own onListen hook has started the plain-HTTP listener and managed the domains.
app.addHook('onListen', async () => {
  await app.autoTls.ready(domains);
  printServing({ domains, httpsPort, httpPort, localRoot });
});
await app.listen({ port: httpsPort, host: process.env.HOST ?? '::' }).catch(exitOnListenError(ListenError));

for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => app.close());
