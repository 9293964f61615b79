/**
 * @module `autotls root`, `trust`, `untrust`: the local CA's root from storage (wherever that is), put into or
 * taken out of the stores this machine's clients read — the system store and NSS databases — like
 * `caddy trust`. Each store that cannot be changed is reported and skipped.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { rootCertificatePem } from '../issuers/internal.js';
import type { Storage } from '../storage/storage.js';
import { CliError } from './storage.js';

/** The nickname/file name the root is installed under, so `untrust` finds it again. */
const TRUST_NAME = 'autotls-local-ca';
/** Debian/Ubuntu's directory for extra roots, read by `update-ca-certificates`. */
const DEBIAN_ANCHORS = '/usr/local/share/ca-certificates';
/** Fedora/RHEL's, read by `update-ca-trust`. */
const FEDORA_ANCHORS = '/etc/pki/ca-trust/source/anchors';

export async function rootPem(storage: Storage): Promise<string> {
  const pem = await rootCertificatePem(storage);
  if (!pem)
    throw new CliError('no local CA in this storage yet: the app creates one for its first local name');
  return pem;
}

/** One line per store: what was done, or why it was skipped. */
export async function trust(storage: Storage, install: boolean): Promise<string[]> {
  const pem = await rootPem(storage);
  const temp = await mkdtemp(path.join(os.tmpdir(), 'autotls-trust-'));
  const file = path.join(temp, `${TRUST_NAME}.crt`);
  await writeFile(file, pem);
  try {
    return [await systemStore(file, pem, install), ...nssDatabases().map((db) => nss(db, file, install))];
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

async function systemStore(file: string, pem: string, install: boolean): Promise<string> {
  const verb = install ? 'installed in' : 'removed from';
  try {
    if (process.platform === 'darwin') {
      const keychain = '/Library/Keychains/System.keychain';
      if (install) run('security', ['add-trusted-cert', '-d', '-r', 'trustRoot', '-k', keychain, file]);
      else run('security', ['remove-trusted-cert', '-d', file]);
      return `${verb} the system keychain`;
    }
    for (const [directory, update] of [
      [DEBIAN_ANCHORS, 'update-ca-certificates'],
      [FEDORA_ANCHORS, 'update-ca-trust'],
    ] as const) {
      if (!existsSync(directory)) continue;
      const target = path.join(directory, `${TRUST_NAME}.crt`);
      if (install) await writeFile(target, pem, { mode: 0o644 });
      else await unlink(target).catch(() => {});
      run(update, []);
      return `${verb} the system store (${target})`;
    }
    return 'system store: skipped (no known trust store on this system)';
  } catch (error) {
    return `system store: skipped (${(error as Error).message.split('\n')[0]})`;
  }
}

/** NSS databases of Chrome/Chromium (~/.pki/nssdb) and Firefox profiles, where they exist. */
function nssDatabases(): string[] {
  const home = os.homedir();
  const databases = [path.join(home, '.pki', 'nssdb')];
  for (const profiles of [
    path.join(home, '.mozilla', 'firefox'),
    path.join(home, 'snap/firefox/common/.mozilla/firefox'),
  ]) {
    if (!existsSync(profiles)) continue;
    for (const profile of readdirSync(profiles)) databases.push(path.join(profiles, profile));
  }
  return databases.filter((db) => existsSync(path.join(db, 'cert9.db')));
}

function nss(db: string, file: string, install: boolean): string {
  try {
    if (install) run('certutil', ['-A', '-d', `sql:${db}`, '-t', 'C,,', '-n', TRUST_NAME, '-i', file]);
    else run('certutil', ['-D', '-d', `sql:${db}`, '-n', TRUST_NAME]);
    return `${install ? 'installed in' : 'removed from'} NSS database ${db}`;
  } catch (error) {
    return `NSS database ${db}: skipped (${(error as Error).message.split('\n')[0]})`;
  }
}

function run(command: string, args: string[]): void {
  execFileSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}
