/**
 * @module test/support/consumer — the packages as a user gets them: `pnpm pack` of each package, installed
 * with npm from the tarballs into a fresh project outside the workspace, next to the frameworks and one
 * major version of Keyv (5, or 6 with the @keyv/redis that accepts it).
 *
 * A project is built once per set of tarballs and Keyv version and reused (by the package test, the doc
 * tests and CI on other Node versions): it lives at `$TMPDIR/autotls-consumer-<hash>`, made in a scratch
 * directory and renamed into place, so two test files building it at once both end with a whole one.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

export const PACKAGES = ['core', 'express', 'koa', 'fastify'] as const;

/** Where the consumer fixtures (programs, tsconfigs) live; copied into every project. */
export const CONSUMER_FIXTURES = path.join(root, 'test/consumer');

/** What a user installs beside our packages: the frameworks our examples use, TypeScript and types. */
const COMMON_DEPENDENCIES = [
  'express@^5.0.0',
  'koa@^3.0.0',
  'fastify@^5.0.0',
  'typescript@5.9.3',
  '@types/node@^20.19.0',
  '@types/express@^5.0.6',
  '@types/koa@^3.0.3',
];

/**
 * Keyv 5 with @keyv/redis 5; Keyv 6 with @keyv/redis 6 (its `latest` tag, 5.x, wants keyv ^5.6: the
 * newest release that accepts Keyv 6 is 6.0.0-rc.1).
 */
export const KEYV_DEPENDENCIES = {
  5: ['keyv@^5.6.0', '@keyv/redis@^5.1.6'],
  6: ['keyv@^6.1.0', '@keyv/redis@^6.0.0-rc.1'],
} as const;

export type KeyvMajor = keyof typeof KEYV_DEPENDENCIES;

/** Offline-friendly, and failing within a minute rather than retrying for many when the registry is away. */
export const NPM_FLAGS = [
  '--no-audit',
  '--no-fund',
  '--prefer-offline',
  '--loglevel=error',
  '--fetch-retries=1',
  '--fetch-timeout=30000',
];

export interface ConsumerProject {
  /** The project directory (outside the workspace), with node_modules and the fixtures. */
  dir: string;
  keyv: KeyvMajor;
  /** Runs `node <file> ...args` in the project with this test's Node binary. */
  node(args: readonly string[], env?: Record<string, string>): Promise<{ stdout: string; stderr: string }>;
  /** Runs the project's own `tsc` with `-p <tsconfig>`. */
  tsc(tsconfig: string): Promise<{ stdout: string; stderr: string }>;
}

/** Packs the four packages (from their current `dist`, so build first) into `dir`; the tarballs' paths. */
export async function packPackages(dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const packed = await Promise.all(
    PACKAGES.map(async (name) => {
      const { stdout } = await run('pnpm', ['pack', '--json', '--pack-destination', dir], {
        cwd: path.join(root, 'packages', name),
      });
      return (JSON.parse(stdout) as { filename: string }).filename;
    }),
  );
  return packed.map((file) => (path.isAbsolute(file) ? file : path.join(dir, file)));
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

/** The project for `keyv`, built now unless an identical one (same tarballs, same dependencies) exists. */
export async function consumerProject(keyv: KeyvMajor): Promise<ConsumerProject> {
  const scratch = path.join(os.tmpdir(), `autotls-consumer-build-${process.pid}-${Date.now()}-${keyv}`);
  const tarballs = await packPackages(path.join(scratch, 'tarballs'));
  const dependencies = [...COMMON_DEPENDENCIES, ...KEYV_DEPENDENCIES[keyv]];
  const hash = createHash('sha256')
    .update(JSON.stringify({ dependencies, tarballs: await Promise.all(tarballs.map(sha256)) }))
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(os.tmpdir(), `autotls-consumer-${hash}`);
  // One install at a time per project: a second test file waits for the first instead of installing too.
  const release = await lock(`${dir}.lock`);
  try {
    await install(scratch, dir, tarballs, dependencies);
  } finally {
    await release();
    await rm(scratch, { recursive: true, force: true });
  }
  // Fixtures are copied every time: editing one must not need a new install.
  await cp(CONSUMER_FIXTURES, path.join(dir, 'fixtures'), { recursive: true });
  const now = new Date();
  await utimes(path.join(dir, '.installed'), now, now);
  await pruneProjects();
  return projectAt(dir, keyv);
}

/** Projects unused for this long are removed (about 70 MB each; every code change makes new tarballs). */
const UNUSED_PROJECT_MS = 6 * 3600_000;

async function pruneProjects(): Promise<void> {
  const names = await readdir(os.tmpdir()).catch(() => [] as string[]);
  for (const name of names.filter((entry) => /^autotls-consumer-[0-9a-f]{16}$/.test(entry))) {
    const dir = path.join(os.tmpdir(), name);
    const used = await stat(path.join(dir, '.installed')).then(
      (info) => info.mtimeMs,
      () => undefined,
    );
    if (used !== undefined && Date.now() - used > UNUSED_PROJECT_MS)
      await rm(dir, { recursive: true, force: true });
  }
}

/** npm-installs the tarballs and dependencies in `scratch` and moves it to `dir`, unless `dir` is whole. */
async function install(
  scratch: string,
  dir: string,
  tarballs: string[],
  dependencies: string[],
): Promise<void> {
  if (!(await exists(path.join(dir, '.installed')))) {
    await rm(dir, { recursive: true, force: true }); // a run stopped midway
    await writeFile(
      path.join(scratch, 'package.json'),
      `${JSON.stringify({ name: 'autotls-consumer', private: true, type: 'module' }, null, 2)}\n`,
    );
    const relative = tarballs.map((file) => `./tarballs/${path.basename(file)}`);
    await run('npm', ['install', ...NPM_FLAGS, ...relative, ...dependencies], {
      cwd: scratch,
      maxBuffer: 16 * 1024 * 1024,
    });
    await writeFile(path.join(scratch, '.installed'), `${new Date().toISOString()}\n`);
    await rename(scratch, dir);
  }
}

/** A lock directory (mkdir is atomic); one left by a killed run is taken over after {@link STALE_LOCK_MS}. */
async function lock(lockDir: string): Promise<() => Promise<void>> {
  const started = Date.now();
  for (;;) {
    try {
      await mkdir(lockDir);
      return () => rm(lockDir, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = await stat(lockDir).then(
        (info) => Date.now() - info.mtimeMs,
        () => 0,
      );
      if (age > STALE_LOCK_MS || Date.now() - started > STALE_LOCK_MS)
        await rm(lockDir, { recursive: true, force: true });
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** Longer than any install takes (a cold npm cache on a slow line: about a minute). */
const STALE_LOCK_MS = 5 * 60_000;

function projectAt(dir: string, keyv: KeyvMajor): ConsumerProject {
  const options = { cwd: dir, maxBuffer: 16 * 1024 * 1024 };
  return {
    dir,
    keyv,
    node: (args, env = {}) =>
      run(process.execPath, [...args], { ...options, env: { ...process.env, ...env } }),
    tsc: (tsconfig) =>
      run(process.execPath, [path.join(dir, 'node_modules/typescript/bin/tsc'), '-p', tsconfig], options),
  };
}

/** The files in the packed tarball of `name` (paths without the `package/` prefix). */
export async function tarballFiles(tarball: string): Promise<string[]> {
  const { stdout } = await run('tar', ['tzf', tarball]);
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => line.replace(/^package\//, ''));
}

/** The installed copy of one of our packages in `project`. */
export function installedPackage(project: ConsumerProject, name: (typeof PACKAGES)[number]): string {
  return path.join(project.dir, 'node_modules/@autotls', name);
}
