/**
 * @module test/support/powerdns — a real PowerDNS Authoritative (`pdns_server`, SQLite backend) on a
 * loopback port: one zone, dynamic updates on, a TSIG key allowed to update it (the docs' example).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dig } from './bind.js';
import { freePorts } from './ports.js';
import { commandExists, makeTempDir, startProcess } from './processes.js';

export const POWERDNS_NOT_INSTALLED =
  'PowerDNS is not installed: run scripts/install-test-deps.sh or apt-get install pdns-server pdns-backend-sqlite3';
const SCHEMA = '/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql';

export interface PowerDns {
  readonly address: string;
  readonly key: { name: string; algorithm: 'hmac-sha256'; secret: string };
  txt(name: string): string[];
  stop(): Promise<void>;
}

export function powerDnsInstalled(): boolean {
  return ['pdns_server', 'pdnsutil', 'sqlite3'].every(commandExists) && existsSync(SCHEMA);
}

export async function startPowerDns(zone: string): Promise<PowerDns> {
  if (!powerDnsInstalled()) throw new Error(POWERDNS_NOT_INSTALLED);
  const dir = makeTempDir('autotls-test-pdns-');
  const [port] = (await freePorts(1, { udp: true })) as [number];
  const database = join(dir, 'pdns.sqlite3');
  execFileSync('sqlite3', [database, `.read ${SCHEMA}`]);
  await writeFile(
    join(dir, 'pdns.conf'),
    [
      'launch=gsqlite3',
      `gsqlite3-database=${database}`,
      'local-address=127.0.0.1',
      `local-port=${port}`,
      'dnsupdate=yes',
      'allow-dnsupdate-from=127.0.0.0/8',
      `socket-dir=${dir}`,
      'guardian=no',
      'daemon=no',
      'write-pid=no',
      '',
    ].join('\n'),
  );
  const pdnsutil = (...args: string[]) =>
    execFileSync('pdnsutil', [`--config-dir=${dir}`, ...args], { encoding: 'utf8' });
  pdnsutil('create-zone', zone, `ns.${zone}`);
  pdnsutil('generate-tsig-key', 'acme', 'hmac-sha256');
  pdnsutil('set-meta', zone, 'TSIG-ALLOW-DNSUPDATE', 'acme');
  // "acme. hmac-sha256. <secret>"
  const secret = pdnsutil('list-tsig-keys').trim().split(/\s+/)[2] ?? '';
  const child = await startProcess({
    name: 'pdns_server',
    command: 'pdns_server',
    args: [`--config-dir=${dir}`],
    cwd: dir,
    inheritEnv: false,
    notInstalledMessage: POWERDNS_NOT_INSTALLED,
    ready: [{ output: 'ready to distribute questions' }, { port }],
  });
  return {
    address: `127.0.0.1:${port}`,
    key: { name: 'acme', algorithm: 'hmac-sha256', secret },
    txt: (name) => dig('127.0.0.1', port, name),
    stop: () => child.stop(),
  };
}
