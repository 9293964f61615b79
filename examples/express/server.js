// Express over HTTPS with certificates managed by autotls.
// With no configuration it serves https://localhost and https://127.0.0.1 from the internal CA (like Caddy),
// storing its data in $AUTOTLS_DATA or your user data directory. For a public site set DOMAINS and EMAIL
// and use ports 80/443.
import { defaultDataDirectory, isInternalName, ListenError, localRootPath } from '@autotls/core';
import { autoTls } from '@autotls/express';
import express from 'express';
import { exitOnListenError, printServing } from '../first-run.js';

const domains = (process.env.DOMAINS ?? 'localhost,127.0.0.1').split(',');
const localRoot = domains.some(isInternalName) ? localRootPath(defaultDataDirectory()) : undefined;
const tls = autoTls({ domains, email: process.env.EMAIL });

const app = express();
app.use(tls);
app.get('/', (req, res) => res.send(`Hello over ${req.secure ? 'HTTPS' : 'HTTP'} from ${req.hostname}\n`));

const httpsPort = Number(process.env.HTTPS_PORT ?? 8443);
const httpPort = Number(process.env.HTTP_PORT ?? 8080);
const servers = await tls.listen(app, { httpsPort, httpPort }).catch(exitOnListenError(ListenError));
await tls.manager.ready(domains);
printServing({ domains, httpsPort, httpPort, localRoot });

for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => servers.close());
