import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CertManager, internal, silentLogger } from '@autotls/core';
import { describe, expect, it } from 'vitest';
import { commandExists } from './support/processes.js';
import { tempDir } from './support/servers.js';

const cli = fileURLToPath(new URL('../packages/core/dist/cli/main.js', import.meta.url));

/** Runs `script` in a mount namespace of its own: the machine's trust store is never touched. */
function inMountNamespace(script: string, env: NodeJS.ProcessEnv) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      'unshare',
      ['--mount', '--propagation', 'private', 'bash', '-euc', script],
      { env: { ...process.env, ...env }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const canRun =
  commandExists('update-ca-certificates') && commandExists('certutil') && commandExists('unshare');

describe.runIf(canRun)('autotls trust / untrust', () => {
  it('installs the local CA root into the system store and an NSS database, and removes it again', async () => {
    const storage = await tempDir();
    const manager = new CertManager({ issuers: [internal()], storage, logger: silentLogger });
    await manager.manage(['app.localhost']);
    await manager.ready(['app.localhost']);
    await manager.close();
    const work = await tempDir();
    const home = path.join(work, 'home');
    await mkdir(path.join(home, '.pki', 'nssdb'), { recursive: true });
    // Copies of the system store, mounted over it only inside the namespace.
    const script = `
      cp -a /etc/ssl/certs "$WORK/certs"; mkdir -p "$WORK/local"
      cp -a /usr/local/share/ca-certificates/. "$WORK/local/"
      mount --bind "$WORK/certs" /etc/ssl/certs; mount --bind "$WORK/local" /usr/local/share/ca-certificates
      certutil -N --empty-password -d "sql:$HOME/.pki/nssdb"
      node "$CLI" root --storage "$STORAGE" > "$WORK/root.pem"
      node "$CLI" trust --storage "$STORAGE"
      body=$(sed -n 2p "$WORK/root.pem")
      grep -q "$body" /etc/ssl/certs/ca-certificates.crt && echo "SYSTEM=yes" || echo "SYSTEM=no"
      certutil -L -d "sql:$HOME/.pki/nssdb" -n autotls-local-ca > /dev/null 2>&1 && echo "NSS=yes" || echo "NSS=no"
      node "$CLI" untrust --storage "$STORAGE"
      grep -q "$body" /etc/ssl/certs/ca-certificates.crt && echo "SYSTEM_AFTER=yes" || echo "SYSTEM_AFTER=no"
      certutil -L -d "sql:$HOME/.pki/nssdb" -n autotls-local-ca > /dev/null 2>&1 && echo "NSS_AFTER=yes" || echo "NSS_AFTER=no"
    `;
    const result = await inMountNamespace(script, { WORK: work, HOME: home, CLI: cli, STORAGE: storage });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    for (const line of ['SYSTEM=yes', 'NSS=yes', 'SYSTEM_AFTER=no', 'NSS_AFTER=no']) {
      expect(result.stdout).toContain(line);
    }
  });
});
