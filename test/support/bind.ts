/**
 * @module test/support/bind — a real BIND 9 (`named -g`) on a loopback port: authoritative for generated
 * zones with a TSIG key that may update TXT records in them (RFC 2136), or a recursive resolver in front of
 * such a server (it follows CNAMEs across zones, as the CA's resolver does).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePorts } from './ports.js';
import { commandExists, makeTempDir, startProcess, waitFor } from './processes.js';

export const BIND_NOT_INSTALLED =
  'BIND 9 is not installed: run scripts/install-test-deps.sh or apt-get install bind9';

export interface BindZone {
  /** e.g. 'zone.test' */
  name: string;
  /** Zone file lines after SOA/NS, relative to the zone, e.g. `'_acme-challenge.a IN CNAME a.other.test.'`. */
  records?: string[];
}

export interface TsigKeyFile {
  name: string;
  algorithm: 'hmac-sha256' | 'hmac-sha384' | 'hmac-sha512';
  /** base64, as in a BIND key file. */
  secret: string;
}

/** Where an instance listens: default 127.0.0.1 and a free port (53 inside a test's own namespace). */
export interface BindListen {
  host?: string;
  port?: number;
}

export interface StartBindOptions extends BindListen {
  zones: BindZone[];
  /** The zones' NS records, name (in the zone) → address; default `ns` → this server's address. */
  nameservers?: Record<string, string>;
  /** Keys allowed to update TXT records anywhere in the zones; default one random hmac-sha256 key. */
  keys?: (Partial<TsigKeyFile> & { mayUpdate?: boolean })[];
}

export interface Bind {
  /** '127.0.0.1:<port>', UDP and TCP. */
  readonly address: string;
  readonly port: number;
  readonly pid: number;
  /** The first of `keys`. */
  readonly key: TsigKeyFile;
  readonly keys: readonly TsigKeyFile[];
  readonly host: string;
  /** The TXT values at `name` as `dig` reads them from this server (each value's strings joined). */
  txt(name: string): string[];
  output(): string;
  stop(): Promise<void>;
}

/**
 * Every zone's SOA: refresh and retry 1 s (a secondary checks for changes every second), negative answers
 * cached for 0 s (a record added is seen at once).
 */
function zoneFile(zone: BindZone, nameservers: Record<string, string>): string {
  const names = Object.keys(nameservers);
  return [
    '$TTL 60',
    `@ IN SOA ${names[0]}.${zone.name}. hostmaster.${zone.name}. 1 1 1 600 0`,
    ...names.map((name) => `@ IN NS ${name}.${zone.name}.`),
    ...Object.entries(nameservers).map(([name, address]) => `${name} IN A ${address}`),
    ...(zone.records ?? []),
    '',
  ].join('\n');
}

/** Options every instance shares: loopback only, no control channel, nothing outside its directory. */
function optionsBlock(dir: string, host: string, port: number, extra: string[]): string {
  return [
    'options {',
    `  directory "${dir}";`,
    `  listen-on port ${port} { ${host}; };`,
    '  listen-on-v6 { none; };',
    '  pid-file none;',
    `  session-keyfile "${join(dir, 'session.key')}";`,
    '  dnssec-validation no;',
    '  notify no;',
    ...extra.map((line) => `  ${line}`),
    '};',
    'controls { };',
  ].join('\n');
}

async function run(name: string, dir: string, host: string, port: number, config: string) {
  if (!commandExists('named')) throw new Error(BIND_NOT_INSTALLED);
  const configPath = join(dir, 'named.conf');
  await writeFile(configPath, config);
  const check = spawnSync('named-checkconf', [configPath], { encoding: 'utf8' });
  if (check.status !== 0)
    throw new Error(`${name}: named.conf does not check: ${check.stdout}${check.stderr}`);
  return startProcess({
    name,
    command: 'named',
    // -g: foreground, log to stderr; -4: IPv4 only (the namespace may have no IPv6 loopback).
    args: ['-g', '-4', '-c', configPath],
    cwd: dir,
    inheritEnv: false,
    notInstalledMessage: BIND_NOT_INSTALLED,
    // "running" ends a line only once every zone is loaded ("running as: named …" comes first).
    ready: [{ output: / running$/m }, { port, host }],
  });
}

/** An authoritative BIND for `zones`, updatable by TSIG: `update-policy { grant <key> zonesub TXT; }`. */
export async function startBind(options: StartBindOptions): Promise<Bind> {
  const dir = makeTempDir('autotls-test-bind-');
  const { host, port } = await listenOn(options);
  const nameservers = options.nameservers ?? { ns: host };
  const keys = (options.keys ?? [{}]).map(
    (key, index): TsigKeyFile => ({
      name: key.name ?? `acme-update-${index + 1}`,
      algorithm: key.algorithm ?? 'hmac-sha256',
      secret: key.secret ?? randomBytes(32).toString('base64'),
    }),
  );
  const grants = keys
    .filter((_, index) => options.keys?.[index]?.mayUpdate !== false)
    .map((key) => `grant ${key.name} zonesub TXT;`)
    .join(' ');
  for (const zone of options.zones) {
    await writeFile(join(dir, `${zone.name}.db`), zoneFile(zone, nameservers));
  }
  const config = [
    optionsBlock(dir, host, port, ['recursion no;', 'allow-transfer { any; };']),
    ...keys.map((key) => `key "${key.name}" { algorithm ${key.algorithm}; secret "${key.secret}"; };`),
    ...options.zones.map(
      (zone) =>
        `zone "${zone.name}" { type primary; file "${join(dir, `${zone.name}.db`)}"; ` +
        `update-policy { ${grants} }; };`,
    ),
    '',
  ].join('\n');
  const child = await run('named', dir, host, port, config);
  return {
    address: `${host}:${port}`,
    host,
    port,
    pid: child.pid,
    key: keys[0] as TsigKeyFile,
    keys,
    txt: (name) => dig(host, port, name),
    output: () => child.output(),
    stop: () => child.stop(),
  };
}

export interface BindResolver {
  readonly address: string;
  readonly port: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * A recursive BIND that asks `upstream` for everything and caches nothing for long: like the CA's
 * resolver, it follows a CNAME into another zone with a second question.
 */
export async function startBindResolver(upstream: Bind, listen: BindListen = {}): Promise<BindResolver> {
  const dir = makeTempDir('autotls-test-bind-resolver-');
  const { host, port } = await listenOn(listen);
  const config = `${optionsBlock(dir, host, port, [
    'recursion yes;',
    'allow-recursion { any; };',
    'forward only;',
    `forwarders { ${upstream.host} port ${upstream.port}; };`,
    'max-cache-ttl 1;',
    'max-ncache-ttl 1;',
  ])}\n`;
  const child = await run('named (resolver)', dir, host, port, config);
  return { address: `${host}:${port}`, port, output: () => child.output(), stop: () => child.stop() };
}

/**
 * A secondary of `primary` for `zones` (zone transfers, no NOTIFY): it asks the primary for changes every
 * second, so it serves an update up to about a second after the primary does, as secondaries do.
 */
export async function startBindSecondary(
  primary: Bind,
  zones: string[],
  listen: BindListen = {},
): Promise<Omit<Bind, 'key' | 'keys'>> {
  const dir = makeTempDir('autotls-test-bind-secondary-');
  const { host, port } = await listenOn(listen);
  const config = [
    optionsBlock(dir, host, port, ['recursion no;', 'min-refresh-time 1;', 'min-retry-time 1;']),
    ...zones.map(
      (zone) =>
        `zone "${zone}" { type secondary; file "${join(dir, `${zone}.db`)}"; ` +
        `primaries { ${primary.host} port ${primary.port}; }; };`,
    ),
    '',
  ].join('\n');
  const child = await run('named (secondary)', dir, host, port, config);
  await waitFor(() => zones.every((zone) => dig(host, port, zone, 'SOA').length > 0), {
    description: `the secondary on ${host}:${port} to load ${zones.join(', ')}`,
  });
  return {
    address: `${host}:${port}`,
    host,
    port,
    pid: child.pid,
    txt: (name) => dig(host, port, name),
    output: () => child.output(),
    stop: () => child.stop(),
  };
}

async function listenOn(listen: BindListen): Promise<{ host: string; port: number }> {
  const host = listen.host ?? '127.0.0.1';
  const port = listen.port ?? ((await freePorts(1, { host, udp: true })) as [number])[0];
  return { host, port };
}

/** What `dig` reads from a server: the values of `type` at `name` (TXT: each value's strings joined). */
export function dig(host: string, port: number, name: string, type = 'TXT'): string[] {
  const result = spawnSync('dig', ['+short', '+norec', '-p', String(port), `@${host}`, type, name], {
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`dig failed: ${result.stdout}${result.stderr}`);
  return result.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((match) => match[1]).join(''));
}
