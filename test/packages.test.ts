/**
 * The packages as users get them: packed, installed with npm into a fresh project outside the workspace
 * (Keyv 5 once, Keyv 6 + its @keyv/redis once), then imported, required, type-checked and run against
 * Pebble. `AUTOTLS_CONSUMER_KEYV=6` limits the run to one Keyv, `AUTOTLS_CONSUMER_TSC=0` skips `tsc`, whose
 * verdict does not depend on the Node version (CI on Node 22 and 24).
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ConsumerProject,
  consumerProject,
  installedPackage,
  type KeyvMajor,
  PACKAGES,
} from './support/consumer.js';
import { type ChallTestSrv, type Pebble, startChallTestSrv, startPebble } from './support/pebble.js';
import { freePort } from './support/ports.js';
import { startProcess } from './support/processes.js';
import { type Redis, startRedis } from './support/redis.js';
import { handshake, tempDir } from './support/servers.js';
import { testTls } from './support/tls.js';

const INSTALL_TIMEOUT_MS = 300_000;
const majors: KeyvMajor[] = process.env.AUTOTLS_CONSUMER_KEYV
  ? [Number(process.env.AUTOTLS_CONSUMER_KEYV) as KeyvMajor]
  : [5, 6];

const ENTRY_POINTS = {
  core: ['CertManager', 'createManager', 'acme', 'letsEncrypt', 'zeroSSL', 'internal'],
  express: ['autoTls'],
  koa: ['autoTls'],
  fastify: ['autoTls', 'httpsOptions'],
};

let dns: ChallTestSrv;
let pebble: Pebble;
let redis: Redis;
let httpPort: number;
let caRootFile: string;

beforeAll(async () => {
  dns = await startChallTestSrv();
  httpPort = await freePort();
  [pebble, redis] = await Promise.all([startPebble({ dnsServer: dns.dnsAddress, httpPort }), startRedis()]);
  caRootFile = (await testTls()).caPath;
});

afterAll(async () => {
  await Promise.all([pebble?.stop(), redis?.stop()]);
  await dns?.stop();
});

/** Which adapter stores in Redis (the rest in a directory), so each Keyv major runs the Redis store once. */
const redisAdapter: Record<KeyvMajor, string> = { 5: 'koa', 6: 'express' };

describe.each(majors)('the packed packages in a fresh npm project with Keyv %s', (keyv) => {
  let project: ConsumerProject;

  beforeAll(async () => {
    project = await consumerProject(keyv);
  }, INSTALL_TIMEOUT_MS);

  it('imports every package as ESM, with its documented entry points', async () => {
    const { stdout } = await project.node(['fixtures/exports.mjs']);
    const exported = JSON.parse(stdout) as Record<string, string[]>;
    for (const [name, entries] of Object.entries(ENTRY_POINTS))
      expect(exported[name]).toEqual(expect.arrayContaining(entries));
  });

  it('require()s every package from CommonJS, with the same entry points', async () => {
    const { stdout, stderr } = await project.node(['fixtures/exports.cjs']);
    const exported = JSON.parse(stdout) as Record<string, string[]>;
    for (const [name, entries] of Object.entries(ENTRY_POINTS))
      expect(exported[name]).toEqual(expect.arrayContaining(entries));
    expect(stderr).not.toMatch(/Error/);
  });

  it.skipIf(process.env.AUTOTLS_CONSUMER_TSC === '0').each(['nodenext', 'bundler', 'node10'])(
    'type-checks under moduleResolution %s with skipLibCheck false',
    async (mode) => {
      const result = await project
        .tsc(`fixtures/tsconfig.${mode}.json`)
        .catch((error: { stdout?: string }) => error);
      const errors = ('stdout' in result ? (result.stdout ?? '') : '').split('\n').filter(Boolean);
      // Only our own declarations and the user's code count: third-party ones can be wrong on their own
      // (@types/koa 3 names `contentDisposition.Options`, which content-disposition 1's bundled types lack).
      const ours = errors.filter(
        (line) => !line.startsWith('node_modules/') || line.startsWith('node_modules/@autotls/'),
      );
      expect(ours).toEqual([]);
    },
  );

  it.each(['express', 'koa', 'fastify', 'core'])(
    '%s with the domains on the manager obtains a certificate from Pebble, serves it, and autotls status shows it',
    async (adapter) => {
      const name = `${adapter}-keyv${keyv}.example.test`;
      const storage = adapter === redisAdapter[keyv] ? redis.url : await tempDir();
      const server = await startProcess({
        name: `consumer ${adapter}`,
        command: process.execPath,
        args: ['fixtures/serve.mjs', adapter],
        cwd: project.dir,
        env: {
          NAME: name,
          HTTP_PORT: String(httpPort),
          STORAGE: storage,
          AUTOTLS_ACME_CA: pebble.directoryUrl,
          AUTOTLS_ACME_CA_ROOT: caRootFile,
          AUTOTLS_LOG_LEVEL: 'warn',
        },
        ready: { output: /serving \d+/ },
        timeoutMs: 30_000,
      });
      try {
        const port = Number(/serving (\d+)/.exec(server.output())?.[1]);
        const { authorized, error, cert } = await handshake(port, name, await pebble.rootPem());
        expect(error).toBeUndefined();
        expect(authorized).toBe(true);
        expect(cert.subjectaltname).toBe(`DNS:${name}`);
        // The `autotls` command from the same install reads that storage (Redis through the app's @keyv/redis).
        const status = await project.node(['node_modules/.bin/autotls', 'status', '--storage', storage]);
        expect(status.stdout).toContain(name);
      } finally {
        await server.stop();
      }
    },
  );

  it('ships a LICENSE, complete metadata and only source maps whose sources are shipped', async () => {
    for (const name of PACKAGES) {
      const dir = installedPackage(project, name);
      const manifest = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8'));
      expect(await readFile(path.join(dir, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
      expect(manifest).toMatchObject({
        license: 'MIT',
        main: './dist/index.js',
        types: './dist/index.d.ts',
        sideEffects: false,
        repository: { directory: `packages/${name}` },
        bugs: { url: expect.any(String) },
        homepage: expect.any(String),
      });
      expect(manifest.keywords.length).toBeGreaterThan(3);
      expect(JSON.stringify(manifest)).not.toContain('workspace:');
      const files = await readdir(dir, { recursive: true });
      const maps = files.filter((file) => file.endsWith('.map'));
      expect(maps.length).toBeGreaterThan(0);
      for (const map of maps) {
        const { sources } = JSON.parse(await readFile(path.join(dir, map), 'utf8')) as { sources: string[] };
        for (const source of sources) {
          const shipped = path.relative(dir, path.resolve(dir, path.dirname(map), source));
          expect(files, `${name}/${map} → ${source}`).toContain(shipped);
        }
      }
    }
  });
});
