/**
 * @module test/support/caddy-acme — Caddy's own ACME server (`acme_server`, Smallstep's implementation, Debian's
 * `caddy`) as a second CA beside Pebble. It issues 12-hour certificates from Caddy's local CA and validates
 * HTTP-01 on port 80 and TLS-ALPN-01 on port 443 of whatever the system resolver says, DNS-01 through the
 * system resolver too: run it only inside a test's own network + mount namespace (test/support/netns.ts),
 * with an /etc/hosts and /etc/resolv.conf of the test's own bind-mounted there.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { httpRequest } from './http.js';
import { freePort } from './ports.js';
import { commandExists, type ManagedProcess, makeTempDir, startProcess } from './processes.js';

export const CADDY_NOT_INSTALLED =
  'caddy is not installed: run scripts/install-test-deps.sh or apt-get install caddy';

export interface CaddyAcme {
  /** 'https://127.0.0.1:<port>/acme/local/directory' */
  readonly directoryUrl: string;
  /** Caddy's local root: trusts the ACME server's HTTPS and every certificate it issues. Kept across restarts. */
  readonly rootPem: string;
  /** Requests the ACME server received to `path` (e.g. 'new-order'), counted from its access log. */
  requests(resource: string): number;
  output(): string;
  /**
   * Stops and starts it again on the same port and local CA. With `forgetAccounts`, its ACME database is
   * deleted first: every account, order and authorization is forgotten, as after a reset.
   */
  restart(options?: { forgetAccounts?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

function caddyfile(port: number, dataDir: string): string {
  // Caddy's own HTTP(S) ports move out of the way: 80 and 443 belong to the server under test.
  return `{
	skip_install_trust
	admin off
	auto_https disable_redirects
	http_port ${port + 1}
	https_port ${port + 2}
	storage file_system ${dataDir}
	pki {
		ca local {
			name "autotls test (Caddy acme_server)"
		}
	}
}

https://127.0.0.1:${port} {
	tls internal
	log {
		output stdout
		format json
	}
	acme_server
}
`;
}

/** Starts Caddy's ACME server on 127.0.0.1 (its HTTPS trusted by `rootPem`). */
export async function startCaddyAcme(): Promise<CaddyAcme> {
  if (!commandExists('caddy')) throw new Error(CADDY_NOT_INSTALLED);
  const dir = makeTempDir('autotls-test-caddy-');
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const configPath = join(dir, 'Caddyfile');
  await writeFile(configPath, caddyfile(port, dataDir));
  const directoryUrl = `https://127.0.0.1:${port}/acme/local/directory`;
  const rootPath = join(dataDir, 'pki/authorities/local/root.crt');
  const answering = async () => {
    const ca = await readFile(rootPath, 'utf8');
    return (await httpRequest(directoryUrl, { ca, timeoutMs: 1_000 })).status === 200;
  };
  const launch = () =>
    startProcess({
      name: 'caddy(acme_server)',
      command: 'caddy',
      args: ['run', '--config', configPath, '--adapter', 'caddyfile'],
      cwd: dir,
      // Caddy writes its autosave and data under these: keep them in the test's directory.
      env: { HOME: dir, XDG_CONFIG_HOME: dir, XDG_DATA_HOME: dir },
      inheritEnv: false,
      notInstalledMessage: CADDY_NOT_INSTALLED,
      timeoutMs: 20_000,
      ready: { check: answering, description: `GET ${directoryUrl} answering 200` },
    });
  let child: ManagedProcess = await launch();
  let previousOutput = '';
  const rootPem = await readFile(rootPath, 'utf8');
  const output = () => previousOutput + child.output();
  return {
    directoryUrl,
    rootPem,
    output,
    requests: (resource) =>
      output()
        .split('\n')
        .filter((line) => line.includes('"uri":"/acme/local/') && line.includes(`/acme/local/${resource}`))
        .length,
    async restart(options = {}) {
      await child.stop();
      previousOutput += child.output();
      // The ACME server's database lives in Caddy's app data directory, apart from the local CA, which stays.
      if (options.forgetAccounts)
        await rm(join(dir, 'caddy', 'acme_server'), { recursive: true, force: true });
      child = await launch();
    },
    stop: () => child.stop(),
  };
}
