/**
 * @module bench/lib/caddy — Caddy (the Debian package) as the reference client against the same Pebble:
 * a Caddyfile with `acme_ca`/`acme_ca_root`, its HTTP/HTTPS ports on Pebble's validation ports, storage in
 * a temp dir, loopback only, JSON logs on stderr. Sites are added one at a time through the admin API.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { commandExists, freePort, httpRequest, makeTempDir, startProcess } from './harness.js';

export function caddyInstalled() {
  return commandExists('caddy');
}

/** One certificate's span in Caddy's log, from "obtaining certificate" to "certificate obtained successfully". */
export function caddyObtainTimes(output) {
  const started = new Map();
  const spans = new Map();
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    if (entry.msg === 'obtaining certificate') started.set(entry.identifier, entry.ts);
    if (entry.msg === 'certificate obtained successfully' && started.has(entry.identifier)) {
      spans.set(entry.identifier, (entry.ts - started.get(entry.identifier)) * 1000);
    }
  }
  return spans;
}

/**
 * Starts Caddy for `pebble`, serving `firstName`; `addSite(name)` reloads the config with one more site and
 * resolves when Caddy logs that certificate as obtained.
 */
/** `caddy run` on a Caddyfile in `dir`, ready once its admin endpoint answers. */
function runCaddy(dir, configPath, adminPort, timeoutMs) {
  return startProcess({
    name: 'caddy',
    command: 'caddy',
    args: ['run', '--config', configPath, '--adapter', 'caddyfile'],
    cwd: dir,
    inheritEnv: false,
    // Caddy keeps its autosaved config and data under these; none of it may touch the real home.
    env: { HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_DATA_HOME: path.join(dir, 'data') },
    ready: { port: adminPort },
    timeoutMs,
  });
}

export async function startCaddy({ pebble, firstName, timeoutMs = 30_000 }) {
  const dir = makeTempDir('autotls-bench-caddy-');
  const caPath = path.join(dir, 'pebble-https-ca.pem');
  await writeFile(caPath, pebble.caPem);
  const adminPort = await freePort();
  const caddyfile = (names) => `{
\tadmin 127.0.0.1:${adminPort}
\tdefault_bind 127.0.0.1
\thttp_port ${pebble.httpPort}
\thttps_port ${pebble.tlsPort}
\tacme_ca ${pebble.directoryUrl}
\tacme_ca_root ${caPath}
\tstorage file_system {
\t\troot ${path.join(dir, 'data')}
\t}
\tocsp_stapling off
\tskip_install_trust
\tlog {
\t\toutput stderr
\t\tformat json
\t}
}
${names.map((name) => `\n${name} {\n\trespond "ok"\n}\n`).join('')}`;
  const configPath = path.join(dir, 'Caddyfile');
  await writeFile(configPath, caddyfile([firstName]));
  const obtained = (name) => `"msg":"certificate obtained successfully","identifier":"${name}"`;
  const child = await runCaddy(dir, configPath, adminPort, timeoutMs);
  const names = [firstName];
  try {
    await child.waitForOutput(obtained(firstName), timeoutMs);
  } catch (error) {
    await child.stop();
    throw error;
  }
  return {
    pid: child.pid,
    output: () => child.output(),
    async addSite(name) {
      names.push(name);
      const response = await httpRequest(`http://127.0.0.1:${adminPort}/load`, {
        method: 'POST',
        headers: { 'content-type': 'text/caddyfile' },
        body: caddyfile(names),
        timeoutMs,
      });
      if (response.status !== 200)
        throw new Error(`caddy /load answered ${response.status}: ${response.body}`);
      await child.waitForOutput(obtained(name), timeoutMs);
    },
    stop: () => child.stop(),
  };
}

/**
 * Starts Caddy with on-demand TLS for every name (`https:// { tls { on_demand } }`), asking `askUrl`, its
 * ACME issuer on `pebble` with only `challenge` ('http-01' or 'tls-alpn-01') enabled. HTTPS on Pebble's
 * TLS-ALPN-01 port, HTTP on its HTTP-01 port.
 */
export async function startCaddyOnDemand({ pebble, askUrl, challenge, timeoutMs = 30_000 }) {
  const dir = makeTempDir('autotls-bench-caddy-on-demand-');
  const caPath = path.join(dir, 'pebble-https-ca.pem');
  await writeFile(caPath, pebble.caPem);
  const adminPort = await freePort();
  const disabled = challenge === 'http-01' ? 'disable_tlsalpn_challenge' : 'disable_http_challenge';
  const configPath = path.join(dir, 'Caddyfile');
  await writeFile(
    configPath,
    `{
\tadmin 127.0.0.1:${adminPort}
\tdefault_bind 127.0.0.1
\thttp_port ${pebble.httpPort}
\thttps_port ${pebble.tlsPort}
\tstorage file_system {
\t\troot ${path.join(dir, 'data')}
\t}
\tocsp_stapling off
\tskip_install_trust
\ton_demand_tls {
\t\task ${askUrl}
\t}
\tcert_issuer acme {
\t\tdir ${pebble.directoryUrl}
\t\ttrusted_roots ${caPath}
\t\t${disabled}
\t}
\tlog {
\t\toutput stderr
\t\tformat json
\t}
}

https:// {
\ttls {
\t\ton_demand
\t}
\trespond "ok"
}
`,
  );
  const child = await runCaddy(dir, configPath, adminPort, timeoutMs);
  return { pid: child.pid, output: () => child.output(), stop: () => child.stop() };
}
