/** @module test/support/pebble — real Pebble ACME CAs and the pebble-challtestsrv mock DNS server. */
import { randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { httpRequest, postJson } from './http.js';
import { freePort, freePorts } from './ports.js';
import { commandExists, type ManagedProcess, makeTempDir, startProcess } from './processes.js';
import { testTls } from './tls.js';

export const PEBBLE_NOT_INSTALLED = 'pebble is not installed: run .ci/run or apt-get install pebble';

function requirePebble(command: string): void {
  if (!commandExists(command)) throw new Error(PEBBLE_NOT_INSTALLED);
}

// ---------------------------------------------------------------------------------------------------------
// pebble-challtestsrv

export interface StartChallTestSrvOptions {
  /** Answer for A queries without an explicit record; default '127.0.0.1'. '' = no answer. */
  defaultIPv4?: string;
  /**
   * Answer for AAAA queries without an explicit record; default '' (none). Pebble's VA asks AAAA first and
   * dials only the first address it gets, so any AAAA answer makes it validate over IPv6.
   */
  defaultIPv6?: string;
  /** DNS port on 127.0.0.1; default a free one. 53 inside a test's own network namespace, for the system resolver. */
  dnsPort?: number;
}

export interface ChallTestSrv {
  /** '127.0.0.1:<port>', for `pebble -dnsserver` and `Resolver.setServers`. UDP and TCP. */
  readonly dnsAddress: string;
  readonly dnsPort: number;
  /** Plain-HTTP management API, e.g. 'http://127.0.0.1:<port>'. */
  readonly managementUrl: string;
  readonly pid: number;
  /** Add an A record (adds to any existing ones for the host). */
  addA(host: string, ip?: string): Promise<void>;
  /** Remove all explicit A records for the host (the default answer applies again). */
  removeA(host: string): Promise<void>;
  addAAAA(host: string, ip: string): Promise<void>;
  removeAAAA(host: string): Promise<void>;
  /** '' = unknown names get no A record. */
  setDefaultIPv4(ip: string): Promise<void>;
  /** '' = unknown names get no AAAA record. */
  setDefaultIPv6(ip: string): Promise<void>;
  /** Add a TXT value (adds to existing ones), e.g. addTxt('_acme-challenge.example.test', digest). */
  addTxt(host: string, value: string): Promise<void>;
  /** Remove all TXT values for the host. */
  clearTxt(host: string): Promise<void>;
  setCname(host: string, target: string): Promise<void>;
  clearCname(host: string): Promise<void>;
  /** Answer SERVFAIL to every query for the host (overrides all other records). */
  setServFail(host: string): Promise<void>;
  clearServFail(host: string): Promise<void>;
  output(): string;
  stop(): Promise<void>;
}

/** Records are stored by exact lower-case FQDN; queries are matched case-sensitively. */
function fqdn(host: string): string {
  const lower = host.toLowerCase();
  return lower.endsWith('.') ? lower : `${lower}.`;
}

/** Start pebble-challtestsrv with only its DNS server (127.0.0.1:<free port>) and management API. */
export async function startChallTestSrv(options: StartChallTestSrvOptions = {}): Promise<ChallTestSrv> {
  requirePebble('pebble-challtestsrv');
  const [dnsPort] = options.dnsPort === undefined ? await freePorts(1, { udp: true }) : [options.dnsPort];
  const managementPort = await freePort();
  if (dnsPort === undefined) throw new Error('no free DNS port');
  const dnsAddress = `127.0.0.1:${dnsPort}`;
  const managementUrl = `http://127.0.0.1:${managementPort}`;
  const resolver = new Resolver({ timeout: 250, tries: 1 });
  resolver.setServers([dnsAddress]);

  const child = await startProcess({
    name: 'pebble-challtestsrv',
    command: 'pebble-challtestsrv',
    args: [
      ...['-management', `127.0.0.1:${managementPort}`, '-dns01', dnsAddress],
      ...['-http01', '', '-https01', '', '-tlsalpn01', ''],
      ...['-defaultIPv4', options.defaultIPv4 ?? '127.0.0.1', '-defaultIPv6', options.defaultIPv6 ?? ''],
    ],
    inheritEnv: false,
    notInstalledMessage: PEBBLE_NOT_INSTALLED,
    ready: [
      { port: managementPort },
      {
        description: `DNS answering on ${dnsAddress}`,
        check: async () => {
          try {
            await resolver.resolve4('readiness-probe.invalid');
            return true;
          } catch (error) {
            // Any DNS answer (even "no such record") means the server is up.
            const code = (error as NodeJS.ErrnoException).code;
            return code === 'ENODATA' || code === 'ENOTFOUND';
          }
        },
      },
    ],
  });

  const call = async (path: string, body: unknown) => {
    await postJson(`${managementUrl}/${path}`, body);
  };
  return {
    dnsAddress,
    dnsPort,
    managementUrl,
    pid: child.pid,
    addA: (host, ip = '127.0.0.1') => call('add-a', { host: fqdn(host), addresses: [ip] }),
    removeA: (host) => call('clear-a', { host: fqdn(host) }),
    addAAAA: (host, ip) => call('add-aaaa', { host: fqdn(host), addresses: [ip] }),
    removeAAAA: (host) => call('clear-aaaa', { host: fqdn(host) }),
    setDefaultIPv4: (ip) => call('set-default-ipv4', { ip }),
    setDefaultIPv6: (ip) => call('set-default-ipv6', { ip }),
    addTxt: (host, value) => call('set-txt', { host: fqdn(host), value }),
    clearTxt: (host) => call('clear-txt', { host: fqdn(host) }),
    setCname: (host, target) => call('set-cname', { host: fqdn(host), target: fqdn(target) }),
    clearCname: (host) => call('clear-cname', { host: fqdn(host) }),
    setServFail: (host) => call('set-servfail', { host: fqdn(host) }),
    clearServFail: (host) => call('clear-servfail', { host: fqdn(host) }),
    output: () => child.output(),
    stop: () => child.stop(),
  };
}

// ---------------------------------------------------------------------------------------------------------
// pebble

export interface StartPebbleOptions {
  /** 'host:port' of the DNS server Pebble's VA uses (challtestsrv's dnsAddress). */
  dnsServer: string;
  /** Port Pebble connects to for HTTP-01 validation (on whatever address DNS gives for the name). */
  httpPort: number;
  /** Port Pebble connects to for TLS-ALPN-01 validation; default: a free port nobody listens on. */
  tlsPort?: number;
  /**
   * EAB: key id -> HMAC key, base64url WITHOUT padding (Pebble 2.4 decodes with RawURLEncoding and exits
   * on '='). Setting it also sets externalAccountBindingRequired. See randomEabKey().
   */
  eab?: Record<string, string>;
  /** PEBBLE_WFE_NONCEREJECT: percent of good nonces rejected as badNonce; default 0. */
  nonceRejectPercent?: number;
  /** PEBBLE_AUTHZREUSE: percent chance a valid authz is reused in a new order; default 0. */
  authzReuse?: number;
  /**
   * config `certificateValidityPeriod` (supported by Pebble 2.4): leaf notAfter = issuance time + this
   * − 1 s (notBefore is the issuance time, not backdated). Pebble's default is 157766400 s (5 years).
   */
  certificateValidityPeriodSeconds?: number;
  /** `pebble -strict`; default false. */
  strict?: boolean;
  /** Extra environment, e.g. PEBBLE_CHAIN_LENGTH, PEBBLE_ALTERNATE_ROOTS, PEBBLE_WFE_ORDERS_PER_PAGE. */
  env?: Record<string, string>;
  /** Label for messages; default 'pebble'. */
  name?: string;
  /** Startup timeout; default 15 000 ms. */
  timeoutMs?: number;
}

export interface PebbleRequestLine {
  method: string;
  /** The route pattern Pebble logs ('/my-order/'), not the full path. */
  route: string;
}

export interface CertStatus {
  Certificate: string;
  Status: string;
  Serial: string;
  Reason?: number;
  RevokedAt?: string;
}

export interface Pebble {
  readonly name: string;
  /** 'https://127.0.0.1:<port>/dir' */
  readonly directoryUrl: string;
  /** 'https://127.0.0.1:<port>' */
  readonly origin: string;
  readonly port: number;
  /** 'https://127.0.0.1:<port>' (roots, intermediates, cert status). */
  readonly managementUrl: string;
  readonly managementPort: number;
  readonly httpPort: number;
  readonly tlsPort: number;
  readonly dnsServer: string;
  /** HTTPS trust anchor for the ACME + management APIs (pass as `ca` to the ACME client). Survives restart. */
  readonly caPem: string;
  /** The EAB keys it was started with (kid -> base64url key); {} without EAB. */
  readonly eab: Readonly<Record<string, string>>;
  /** PID of the current process (changes on restart). */
  readonly pid: number;
  readonly running: boolean;
  readonly configPath: string;
  /** Issuing root (PEM) of the current process: management GET /roots/0. New after every restart. */
  rootPem(): Promise<string>;
  /** Intermediate (PEM): management GET /intermediates/0. */
  intermediatePem(): Promise<string>;
  /** management GET /cert-status-by-serial/<hex serial>; null when unknown (404). */
  certStatus(serialHex: string): Promise<CertStatus | null>;
  /** Captured log of every run so far (restarts separated by a '--- pebble restarted ---' line). */
  output(): string;
  /** Request lines ('GET /dir -> calling handler()') of the current run, in order. */
  requestLog(): PebbleRequestLine[];
  /** Stop the process (SIGTERM, then SIGKILL after 2 s). The ports stay reserved for restart(). */
  stop(): Promise<void>;
  /** Stop if running, then start a fresh Pebble on the same ports/config. It forgets all state. */
  restart(): Promise<void>;
}

/** A random EAB HMAC key in the form Pebble wants (32 bytes, base64url, no padding). */
export function randomEabKey(): string {
  return randomBytes(32).toString('base64url');
}

export async function startPebble(options: StartPebbleOptions): Promise<Pebble> {
  requirePebble('pebble');
  const name = options.name ?? 'pebble';
  const tls = await testTls();
  const [port, managementPort, spareTlsPort] = (await freePorts(3)) as [number, number, number];
  const tlsPort = options.tlsPort ?? spareTlsPort;
  const eab = { ...options.eab };
  for (const [kid, key] of Object.entries(eab)) {
    if (!/^[A-Za-z0-9_-]+$/.test(key)) {
      throw new Error(
        `EAB key for ${kid} must be base64url without padding (Pebble 2.4 rejects others): ${key}`,
      );
    }
  }

  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${port}`,
      managementListenAddress: `127.0.0.1:${managementPort}`,
      certificate: tls.certPath,
      privateKey: tls.keyPath,
      httpPort: options.httpPort,
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: Object.keys(eab).length > 0,
      ...(Object.keys(eab).length > 0 ? { externalAccountMACKeys: eab } : {}),
      ...(options.certificateValidityPeriodSeconds === undefined
        ? {}
        : { certificateValidityPeriod: options.certificateValidityPeriodSeconds }),
    },
  };
  const dir = makeTempDir('autotls-test-pebble-');
  const configPath = join(dir, 'pebble-config.json');
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);

  const origin = `https://127.0.0.1:${port}`;
  const managementUrl = `https://127.0.0.1:${managementPort}`;
  const directoryUrl = `${origin}/dir`;
  const args = ['-config', configPath, '-dnsserver', options.dnsServer];
  if (options.strict) args.push('-strict');
  const env = {
    PEBBLE_VA_NOSLEEP: '1',
    PEBBLE_WFE_NONCEREJECT: String(options.nonceRejectPercent ?? 0),
    PEBBLE_AUTHZREUSE: String(options.authzReuse ?? 0),
    ...options.env,
  };
  const answers = async (url: string) =>
    (await httpRequest(url, { ca: tls.caPem, timeoutMs: 1000 })).status === 200;

  const launch = () =>
    startProcess({
      name,
      command: 'pebble',
      args,
      cwd: dir,
      env,
      inheritEnv: false,
      notInstalledMessage: PEBBLE_NOT_INSTALLED,
      timeoutMs: options.timeoutMs ?? 15_000,
      ready: [
        { description: `GET ${directoryUrl} answering 200`, check: () => answers(directoryUrl) },
        {
          description: `GET ${managementUrl}/roots/0 answering 200`,
          check: () => answers(`${managementUrl}/roots/0`),
        },
      ],
    });

  let child: ManagedProcess = await launch();
  let previousOutput = '';

  const getPem = async (path: string): Promise<string> => {
    const response = await httpRequest(`${managementUrl}${path}`, { ca: tls.caPem });
    if (response.status !== 200)
      throw new Error(`${name}: GET ${path} answered ${response.status}: ${response.body}`);
    return response.body;
  };

  return {
    name,
    directoryUrl,
    origin,
    port,
    managementUrl,
    managementPort,
    httpPort: options.httpPort,
    tlsPort,
    dnsServer: options.dnsServer,
    caPem: tls.caPem,
    eab,
    configPath,
    get pid() {
      return child.pid;
    },
    get running() {
      return child.running;
    },
    rootPem: () => getPem('/roots/0'),
    intermediatePem: () => getPem('/intermediates/0'),
    async certStatus(serialHex) {
      const response = await httpRequest(
        `${managementUrl}/cert-status-by-serial/${serialHex.toLowerCase()}`,
        {
          ca: tls.caPem,
        },
      );
      if (response.status === 404) return null;
      if (response.status !== 200)
        throw new Error(`${name}: cert status answered ${response.status}: ${response.body}`);
      return JSON.parse(response.body) as CertStatus;
    },
    output: () => previousOutput + child.output(),
    requestLog: () =>
      [...child.output().matchAll(/ ([A-Z]+) (\S+) -> calling handler\(\)/g)].map((match) => ({
        method: match[1] ?? '',
        route: match[2] ?? '',
      })),
    stop: () => child.stop(),
    async restart() {
      await child.stop();
      previousOutput += `${child.output()}--- pebble restarted ---\n`;
      child = await launch();
    },
  };
}
