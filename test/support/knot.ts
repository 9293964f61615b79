/**
 * @module test/support/knot — a real Knot DNS (`knotd`) on a loopback port: authoritative for one generated
 * zone, with a TSIG key whose ACL allows TXT updates at `_acme-challenge` names only (the docs' example).
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dig } from './bind.js';
import { freePorts } from './ports.js';
import { commandExists, makeTempDir, startProcess } from './processes.js';

export const KNOT_NOT_INSTALLED =
  'Knot DNS is not installed: run scripts/install-test-deps.sh or apt-get install knot';

export interface Knot {
  readonly address: string;
  readonly port: number;
  readonly key: { name: string; algorithm: 'hmac-sha256'; secret: string };
  /** The TXT values at `name` as `dig` reads them from this server. */
  txt(name: string): string[];
  stop(): Promise<void>;
}

export function knotInstalled(): boolean {
  return commandExists('knotd');
}

/** Knot for `zone`; `owners` are the names (relative to the zone) the key may write TXT at and below. */
export async function startKnot(zone: string, owners: string[]): Promise<Knot> {
  if (!knotInstalled()) throw new Error(KNOT_NOT_INSTALLED);
  const dir = makeTempDir('autotls-test-knot-');
  const [port] = (await freePorts(1, { udp: true })) as [number];
  const key = { name: 'acme', algorithm: 'hmac-sha256' as const, secret: randomBytes(32).toString('base64') };
  const zoneFile = join(dir, `${zone}.zone`);
  await writeFile(
    zoneFile,
    `$TTL 60\n@ IN SOA ns.${zone}. hostmaster.${zone}. 1 1 1 600 0\n@ IN NS ns.${zone}.\nns IN A 127.0.0.1\n`,
  );
  const config = join(dir, 'knot.conf');
  await writeFile(
    config,
    [
      'server:',
      `  listen: 127.0.0.1@${port}`,
      `  rundir: ${dir}`,
      'database:',
      `  storage: ${dir}`,
      'log:',
      '  - target: stderr',
      '    any: info',
      'key:',
      `  - id: ${key.name}`,
      `    algorithm: ${key.algorithm}`,
      `    secret: ${key.secret}`,
      'acl:',
      '  - id: acme-update',
      `    key: ${key.name}`,
      '    action: update',
      '    update-type: [TXT]',
      '    update-owner: name',
      '    update-owner-match: sub-or-equal',
      `    update-owner-name: [${owners.join(', ')}]`,
      'zone:',
      `  - domain: ${zone}`,
      `    file: ${zoneFile}`,
      '    acl: acme-update',
      '',
    ].join('\n'),
  );
  const child = await startProcess({
    name: 'knotd',
    command: 'knotd',
    args: ['-c', config],
    cwd: dir,
    inheritEnv: false,
    notInstalledMessage: KNOT_NOT_INSTALLED,
    // Knot loads zones in the background: ready once this zone is.
    ready: [{ output: `[${zone}.] loaded, serial` }, { port }],
  });
  return {
    address: `127.0.0.1:${port}`,
    port,
    key,
    txt: (name) => dig('127.0.0.1', port, name),
    stop: () => child.stop(),
  };
}
