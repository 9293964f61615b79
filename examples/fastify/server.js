// Fastify over HTTPS with certificates managed by autotls.
// With no configuration it serves https://localhost from the internal CA (like Caddy), storing its data
// in $AUTOTLS_DATA or your user data directory. For a public site set DOMAINS and EMAIL and use ports 80/443.
import { autoTls, httpsOptions } from '@autotls/fastify';
import Fastify from 'fastify';

const domains = (process.env.DOMAINS ?? 'localhost').split(',');
const httpsPort = Number(process.env.HTTPS_PORT ?? 8443);
const httpPort = Number(process.env.HTTP_PORT ?? 8080);

// One options object for both: httpsOptions() makes the manager that the plugin then uses.
const options = { domains, email: process.env.EMAIL, httpPort };
const app = Fastify({ https: httpsOptions(options) });
await app.register(autoTls, options);
app.get('/', async (request) => {
  const scheme = request.protocol === 'https' ? 'HTTPS' : 'HTTP';
  return `Hello over ${scheme} from ${request.hostname}\n`;
});

// Runs after the plugin's own onListen hook has started the plain-HTTP listener and managed the domains.
app.addHook('onListen', async () => {
  await app.autoTls.ready(domains);
  console.log(`Serving https://${domains[0]}:${httpsPort}/ (plain HTTP on :${httpPort} redirects)`);
});
await app.listen({ port: httpsPort, host: process.env.HOST ?? '::' });

for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => app.close());
