import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { acme, CertManager, silentLogger } from '@autotls/core';
import { autoTls } from '@autotls/express';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordEvents } from './support/events.js';
import { captureLogger } from './support/logs.js';
import { type ChallTestSrv, type Pebble, startChallTestSrv, startPebble } from './support/pebble.js';
import { freePort } from './support/ports.js';
import { handshake, tempDir } from './support/servers.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

let dns: ChallTestSrv;
let pebble: Pebble;
let httpPort: number;

beforeAll(async () => {
  dns = await startChallTestSrv();
  httpPort = await freePort();
  pebble = await startPebble({ dnsServer: dns.dnsAddress, httpPort });
});

afterAll(async () => {
  await pebble?.stop();
  await dns?.stop();
});

const issuer = () => acme({ directoryUrl: pebble.directoryUrl, ca: pebble.caPem });
const newOrders = () => pebble.requestLog().filter((line) => line.route.includes('order-plz')).length;

/** A manager on `storage` whose challenge listener is on httpPort, where Pebble validates. */
async function answeringManager(storage: string) {
  const manager = new CertManager({ issuers: [issuer()], storage, logger: silentLogger });
  const plain = http.createServer(manager.httpHandler());
  await new Promise<void>((resolve) => plain.listen(httpPort, '127.0.0.1', resolve));
  return {
    manager,
    async close() {
      plain.closeAllConnections();
      await new Promise((resolve) => plain.close(resolve));
      await manager.close();
    },
  };
}

/** Obtains a certificate for `name` into `storage` with a manager of its own, and closes that manager. */
async function obtainInto(storage: string, name: string) {
  const first = await answeringManager(storage);
  try {
    await first.manager.manage([name]);
    await first.manager.ready([name]);
  } finally {
    await first.close();
  }
}

describe('an Express app with app.use(autoTls()) and a real ACME CA', () => {
  it('obtains a certificate that verifies against the CA root and names exactly the host', async () => {
    const name = 'shop.example.test';
    const logger = captureLogger();
    const autotls = autoTls({ domains: [name], issuers: [issuer()], storage: await tempDir(), logger });
    const events = recordEvents(autotls.manager);
    const app = express();
    app.use(autotls);
    app.get('/', (_req, res) => res.send('hello'));
    const servers = await autotls.listen(app, { httpPort, httpsPort: 0, host: '127.0.0.1' });
    try {
      await autotls.manager.ready([name]);
      const port = (servers.https.address() as { port: number }).port;
      const { authorized, error, cert } = await handshake(port, name, `${await pebble.rootPem()}`);
      expect(error).toBeUndefined();
      expect(authorized).toBe(true);
      expect(cert.subjectaltname).toBe(`DNS:${name}`);
      expect(logger.find('served key authentication')[0]).toMatchObject({
        identifier: name,
        distributed: false,
      });
      expect(events.of('cert_obtained', name)).toEqual([
        { identifier: name, issuer: expect.any(String), ca: pebble.directoryUrl, renewal: false },
      ]);
    } finally {
      await servers.close();
    }
  });

  it('serves a stored certificate from a second manager without asking the CA', async () => {
    const name = 'stored.example.test';
    const storage = await tempDir();
    await obtainInto(storage, name);
    const ordersBefore = newOrders();
    const second = new CertManager({ issuers: [issuer()], storage, logger: silentLogger });
    const events: string[] = [];
    second.on('cached_managed_cert', () => events.push('cached'));
    second.on('cert_obtaining', () => events.push('obtaining'));
    await second.manage([name]);
    await second.ready([name]);
    expect(events).toEqual(['cached']);
    expect(newOrders()).toBe(ordersBefore);
    expect(second.getCertificate(name)?.names).toEqual([name]);
    await second.close();
  });

  it('replaces a truncated storage entry with a fresh certificate and a clear log, not a crash', async () => {
    const name = 'corrupt.example.test';
    const storage = await tempDir();
    const { manager: first, close } = await answeringManager(storage);
    try {
      await first.manage([name]);
      await first.ready([name]);
      const file = await findFile(storage, name);
      const content = await readFile(file, 'utf8');
      await writeFile(file, content.slice(0, content.length / 2));
      const logger = captureLogger();
      const second = new CertManager({ issuers: [issuer()], storage, logger });
      const ordersBefore = newOrders();
      await second.manage([name]);
      await second.ready([name]);
      expect(logger.find('unusable certificate in storage; a new one will be obtained')[0]).toMatchObject({
        identifier: name,
      });
      expect(newOrders()).toBe(ordersBefore + 1);
      expect(second.getCertificate(name)?.serialNumber).not.toBe(first.getCertificate(name)?.serialNumber);
      await second.close();
    } finally {
      await close();
    }
  });

  it('two managers in two processes on one file storage obtain one certificate, not two', async () => {
    const name = 'cluster.example.test';
    const storage = await tempDir();
    // This process only answers challenges, from storage: the children write them there.
    const responder = await answeringManager(storage);
    const script = path.join(storage, 'child.mjs');
    await writeFile(
      script,
      `import { CertManager, acme, silentLogger } from ${JSON.stringify(path.join(root, 'packages/core/dist/index.js'))};
       const manager = new CertManager({ storage: process.argv[2], logger: silentLogger,
         issuers: [acme({ directoryUrl: process.argv[3], ca: process.env.CA_PEM })] });
       let obtained = 0;
       manager.on('cert_obtained', () => obtained++);
       await manager.manage([process.argv[4]]);
       await manager.ready([process.argv[4]]);
       console.log(JSON.stringify({ serial: manager.getCertificate(process.argv[4]).serialNumber, obtained }));
       await manager.close();`,
    );
    const ordersBefore = newOrders();
    try {
      const env = { ...process.env, CA_PEM: pebble.caPem };
      const children = await Promise.all(
        [1, 2].map(() =>
          run(process.execPath, [script, storage, pebble.directoryUrl, name], { env, timeout: 60_000 }).catch(
            (error) => {
              throw new Error(`child failed: ${error.stderr}`);
            },
          ),
        ),
      );
      const results = children.map(
        (child) => JSON.parse(child.stdout.trim()) as { serial: string; obtained: number },
      );
      expect(results[0]?.serial).toBe(results[1]?.serial);
      expect(results.map((r) => r.obtained).sort()).toEqual([0, 1]);
      expect(newOrders()).toBe(ordersBefore + 1);
    } finally {
      await responder.close();
    }
  });

  it('gives localhost a certificate from the internal CA that verifies against its stored root', async () => {
    const storage = await tempDir();
    const autotls = autoTls({ domains: ['localhost'], storage, logger: silentLogger });
    const app = express();
    app.use(autotls);
    const servers = await autotls.listen(app, { httpPort: 0, httpsPort: 0, host: '127.0.0.1' });
    try {
      await autotls.manager.ready(['localhost']);
      const rootPem = await readFile(path.join(storage, 'pki/authorities/local/root.crt'), 'utf8');
      const port = (servers.https.address() as { port: number }).port;
      const { authorized, cert } = await handshake(port, 'localhost', rootPem);
      expect(authorized).toBe(true);
      expect(cert.subjectaltname).toBe('DNS:localhost');
    } finally {
      await servers.close();
    }
  });
});

async function findFile(directory: string, needle: string): Promise<string> {
  for (const entry of await readdir(directory, { recursive: true, withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name);
    if (entry.isFile() && full.includes(needle) && full.includes('certificates')) return full;
  }
  throw new Error(`no stored file for ${needle} under ${directory}`);
}
