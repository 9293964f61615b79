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
import { commandExists, makeTempDir, startProcess } from './processes.js';

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

export interface StartBindOptions {
  zones: BindZone[];
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
  /** The TXT values at `name` as `dig` reads them from this server (each value's strings joined). */
  txt(name: string): string[];
  output(): string;
  stop(): Promise<void>;
}

/** Every zone's SOA: short timers, negative answers cached for 0 s (a record added is seen at once). */
function zoneFile(zone: BindZone): string {
  return [
    '$TTL 60',
    `@ IN SOA ns.${zone.name}. hostmaster.${zone.name}. 1 60 60 600 0`,
    `@ IN NS ns.${zone.name}.`,
    'ns IN A 127.0.0.1',
    ...(zone.records ?? []),
    '',
  ].join('\n');
}

/** Options every instance shares: loopback only, no control channel, nothing outside its directory. */
function optionsBlock(dir: string, port: number, extra: string[]): string {
  return [
    'options {',
    `  directory "${dir}";`,
    `  listen-on port ${port} { 127.0.0.1; };`,
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

async function run(name: string, dir: string, port: number, config: string) {
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
    ready: [{ output: /\brunning\b/ }, { port }],
  });
}

/** An authoritative BIND for `zones`, updatable by TSIG: `update-policy { grant <key> zonesub TXT; }`. */
export async function startBind(options: StartBindOptions): Promise<Bind> {
  const dir = makeTempDir('autotls-test-bind-');
  const [port] = (await freePorts(1, { udp: true })) as [number];
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
  for (const zone of options.zones) await writeFile(join(dir, `${zone.name}.db`), zoneFile(zone));
  const config = [
    optionsBlock(dir, port, ['recursion no;']),
    ...keys.map((key) => `key "${key.name}" { algorithm ${key.algorithm}; secret "${key.secret}"; };`),
    ...options.zones.map(
      (zone) =>
        `zone "${zone.name}" { type primary; file "${join(dir, `${zone.name}.db`)}"; ` +
        `update-policy { ${grants} }; };`,
    ),
    '',
  ].join('\n');
  const child = await run('named', dir, port, config);
  const address = `127.0.0.1:${port}`;
  return {
    address,
    port,
    pid: child.pid,
    key: keys[0] as TsigKeyFile,
    keys,
    txt: (name) => dig(port, name),
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
export async function startBindResolver(upstream: Bind): Promise<BindResolver> {
  const dir = makeTempDir('autotls-test-bind-resolver-');
  const [port] = (await freePorts(1, { udp: true })) as [number];
  const config = `${optionsBlock(dir, port, [
    'recursion yes;',
    'allow-recursion { any; };',
    'forward only;',
    `forwarders { 127.0.0.1 port ${upstream.port}; };`,
    'max-cache-ttl 1;',
    'max-ncache-ttl 1;',
  ])}\n`;
  const child = await run('named (resolver)', dir, port, config);
  return { address: `127.0.0.1:${port}`, port, output: () => child.output(), stop: () => child.stop() };
}

function dig(port: number, name: string): string[] {
  const result = spawnSync('dig', ['+short', '+norec', '-p', String(port), '@127.0.0.1', 'TXT', name], {
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`dig failed: ${result.stdout}${result.stderr}`);
  return result.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((match) => match[1]).join(''));
}
