import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { acme, CertManager, internal, silentLogger } from '@autotls/core';
import { autoTls } from '@autotls/express';
import KeyvRedis from '@keyv/redis';
import express from 'express';
import { Keyv } from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusRow } from '../packages/core/src/cli/status.js';
import { type StartedCAs, startCAs } from './support/index.js';
import { nextEvent, pause, waitUntil } from './support/lifecycle.js';
import { freePort } from './support/ports.js';
import { type Redis, startRedis } from './support/redis.js';
import { handshake, tempDir } from './support/servers.js';

const cli = fileURLToPath(new URL('../packages/core/dist/cli/main.js', import.meta.url));

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `autotls <args>` as a child process, as an operator would. */
function autotls(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, ...args],
      { env: { ...process.env, ...env }, timeout: 30_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** What `status --json` prints, one per name (the CLI's own type). */
type Row = StatusRow;

async function statusJson(storage: string): Promise<Row[]> {
  const result = await autotls(['status', '--storage', storage, '--json']);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as Row[];
}

const rowFor = async (storage: string, name: string) =>
  (await statusJson(storage)).find((row) => row.name === name);

let cas: StartedCAs<'ca'>;
let httpPort: number;
let storage: string;
let app: ReturnType<typeof autoTls>;
let httpsPort: number;
let closeServers: () => Promise<void>;
const name = 'shop.cli.test';

const newOrders = () => cas.pebbles.ca.requestLog().filter((line) => line.route.includes('order-plz')).length;

beforeAll(async () => {
  httpPort = await freePort();
  cas = await startCAs({ names: ['ca'], httpPort });
  storage = await tempDir();
  const { ca } = cas.pebbles;
  app = autoTls({
    domains: [name],
    issuers: [acme({ directoryUrl: ca.directoryUrl, ca: ca.caPem, challenges: ['http-01'] })],
    storage,
    logger: silentLogger,
    renewal: { checkIntervalMs: 200 },
    retry: { intervalsMs: [2_000] },
  });
  const web = express();
  web.use(app);
  web.get('/', (_req, res) => res.send('hello'));
  const servers = await app.listen(web, { httpPort, httpsPort: 0, host: '127.0.0.1' });
  httpsPort = (servers.https.address() as { port: number }).port;
  closeServers = async () => {
    for (const server of [servers.http, servers.https]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  };
  await app.manager.ready([name]);
});

afterAll(async () => {
  await closeServers?.();
  await app?.manager.close();
  await cas?.stopAll();
});

describe('autotls status', () => {
  it('lists the certificate a running Express app obtained, with the served certificate’s dates and serial', async () => {
    const served = (await handshake(httpsPort, name, await cas.pebbles.ca.rootPem())).cert;
    const row = await rowFor(storage, name);
    expect(row).toBeDefined();
    expect(row?.notAfter).toBe(new Date(served.valid_to).toISOString());
    expect(row?.notBefore).toBe(new Date(served.valid_from).toISOString());
    expect(row?.serial).toBe(served.serialNumber.toLowerCase());
    expect(row?.issuer).toBe(app.manager.getCertificate(name)?.issuerKey);
    const renewalAt = Date.parse(row?.renewalAt ?? '');
    expect(renewalAt).toBeGreaterThan(Date.parse(row?.notBefore ?? ''));
    expect(renewalAt).toBeLessThan(Date.parse(row?.notAfter ?? ''));
    expect(row?.failedAttempts).toBeUndefined();
    expect(row?.lastError).toBeUndefined();
  });

  it('without --storage reads the library’s default, $AUTOTLS_DATA', async () => {
    const result = await autotls(['status', '--json'], { AUTOTLS_DATA: storage });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(await statusJson(storage));
  });

  it('prints a table with the name and its expiry in days', async () => {
    const result = await autotls(['status', '--storage', storage]);
    expect(result.code).toBe(0);
    const line = result.stdout.split('\n').find((text) => text.startsWith(name));
    expect(line).toMatch(/\(\d+(\.\d)?d\)/);
    expect(result.stdout).not.toContain('\u001b['); // not a terminal: no colour
  });

  it('shows a name failing on DNS with its failure, and drops the failure fields once it is fixed', async () => {
    const failing = 'broken-dns.cli.test';
    // No A record for names without one: Pebble cannot resolve it, a DNS problem.
    await cas.challtestsrv.setDefaultIPv4('');
    const failed = nextEvent(app.manager, 'cert_failed');
    await app.manager.manage([failing]);
    await failed;
    let row: Row | undefined;
    await waitUntil(async () => {
      const askedAtMs = Date.now();
      row = await rowFor(storage, failing);
      return Boolean(row?.failedAttempts) && Date.parse(row?.nextAttemptAt ?? '') > askedAtMs;
    }, 'a failure with a future next attempt is listed');
    expect(row?.failedAttempts).toBeGreaterThanOrEqual(1);
    // Pebble reports an unresolvable name as a connection problem whose detail says so.
    expect(row?.lastError?.type).toMatch(/^urn:ietf:params:acme:error:(dns|connection)$/);
    expect(row?.lastError?.detail).toContain('could not resolve');
    expect(row?.lastError?.ca).toBe(cas.pebbles.ca.directoryUrl);
    expect(Date.parse(row?.lastFailureAt ?? '')).toBeLessThan(Date.parse(row?.nextAttemptAt ?? ''));
    expect(row?.notAfter).toBeUndefined();
    await cas.challtestsrv.addA(failing, '127.0.0.1');
    await cas.challtestsrv.setDefaultIPv4('127.0.0.1');
    await app.manager.ready([failing]);
    await waitUntil(
      async () => Boolean((await rowFor(storage, failing))?.serial),
      'the certificate is listed',
    );
    const fixed = await rowFor(storage, failing);
    expect(fixed?.failedAttempts).toBeUndefined();
    expect(fixed?.lastError).toBeUndefined();
    expect(fixed?.nextAttemptAt).toBeUndefined();
  });
});

describe('autotls renew and revoke', () => {
  it('renew: the running app serves a new serial after its next pass, with exactly one new order', async () => {
    const before = app.manager.getCertificate(name)?.serialNumber;
    const ordersBefore = newOrders();
    const renewed = nextEvent<{ old_serial: string; serial: string; reason: string }>(
      app.manager,
      'cert_renewed',
    );
    const result = await autotls(['renew', name, '--storage', storage]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const event = await renewed;
    expect(event).toMatchObject({ old_serial: before, reason: 'requested' });
    const served = (await handshake(httpsPort, name, await cas.pebbles.ca.rootPem())).cert;
    expect(served.serialNumber.toLowerCase()).toBe(event.serial);
    await pause(1_000); // five more passes: the request is spent, no second renewal
    expect(newOrders()).toBe(ordersBefore + 1);
    const rows = (await statusJson(storage)).filter((row) => row.name === name);
    expect(rows.map((row) => row.serial)).toEqual([event.serial]);
  });

  it('revoke: the CA marks the certificate revoked, and the running app replaces it', async () => {
    const before = app.manager.getCertificate(name)?.serialNumber ?? '';
    const caFile = path.join(await tempDir(), 'pebble-ca.pem');
    await writeFile(caFile, cas.pebbles.ca.caPem);
    const renewed = nextEvent<{ old_serial: string; serial: string; reason: string }>(
      app.manager,
      'cert_renewed',
    );
    const result = await autotls([
      'revoke',
      name,
      '--reason',
      'keyCompromise',
      '--ca-file',
      caFile,
      '--storage',
      storage,
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect((await cas.pebbles.ca.certStatus(before))?.Status).toBe('Revoked');
    expect(await renewed).toMatchObject({ old_serial: before, reason: 'revoked' });
  });
});

describe('autotls root', () => {
  it('prints the local CA root that signs the app’s local names', async () => {
    await app.manager.manage(['admin.localhost']);
    await app.manager.ready(['admin.localhost']);
    const result = await autotls(['root', '--storage', storage]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect((await handshake(httpsPort, 'admin.localhost', result.stdout)).authorized).toBe(true);
  });
});

describe('autotls on storage it cannot use', () => {
  it('reports a missing directory in one line and exits non-zero, within seconds', async () => {
    const result = await autotls(['status', '--storage', path.join(storage, 'nope')]);
    expect(result.code).not.toBe(0);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('does not exist');
  });

  it('reports an unreachable Redis in one line and exits non-zero, within seconds', async () => {
    const port = await freePort();
    const result = await autotls(['status', '--storage', `redis://127.0.0.1:${port}`]);
    expect(result.code).not.toBe(0);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('cannot reach Redis');
  });

  it('refuses an unknown command with the usage and exit code 2', async () => {
    const result = await autotls(['frobnicate']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('usage: autotls');
  });
});

describe('autotls status on Redis', () => {
  let redis: Redis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('finds the data of an app on `new Keyv(new KeyvRedis(url))` unaided, with the served certificate’s fields', async () => {
    const keyv = new Keyv(new KeyvRedis(redis.url));
    const manager = new CertManager({ issuers: [internal()], storage: keyv, logger: silentLogger });
    try {
      await manager.manage(['api.localhost']);
      await manager.ready(['api.localhost']);
      const served = manager.getCertificate('api.localhost');
      const rows = await statusJson(`redis://127.0.0.1:${redis.port}`);
      expect(rows).toEqual([
        expect.objectContaining({
          name: 'api.localhost',
          issuer: 'local',
          serial: served?.serialNumber,
          notAfter: new Date(served?.notAfter ?? 0).toISOString(),
          notBefore: new Date(served?.notBefore ?? 0).toISOString(),
        }),
      ]);
      const table = await autotls(['status', '--storage', redis.url]);
      expect(table.stdout).toContain('api.localhost');
    } finally {
      await manager.close();
      await keyv.disconnect();
    }
  });
});
