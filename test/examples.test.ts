/**
 * examples/ are started as the README says, with no configuration but the ports and the data directory,
 * and answered the way the example tells the user to: `curl --cacert <the root it printed>`, by name and by
 * IP (a handshake without SNI). A taken port is one line, not a stack trace.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { freePorts } from './support/ports.js';
import { commandExists, startProcess } from './support/processes.js';
import { tempDir } from './support/servers.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const EXAMPLES = ['express', 'koa', 'fastify'];

async function startExample(name: string, env: Record<string, string>) {
  return startProcess({
    name: `example ${name}`,
    command: process.execPath,
    args: [`examples/${name}/server.js`],
    cwd: root,
    env: { AUTOTLS_LOG_LEVEL: 'warn', ...env },
    ready: { output: /Local CA root: .*root\.crt/ },
    timeoutMs: 20_000,
  });
}

describe.skipIf(!commandExists('curl'))('the examples', () => {
  it.each(EXAMPLES)(
    '%s serves https://127.0.0.1 and https://localhost to curl --cacert <printed root>',
    async (name) => {
      const [httpsPort, httpPort] = (await freePorts(2)) as [number, number];
      const example = await startExample(name, {
        HTTPS_PORT: String(httpsPort),
        HTTP_PORT: String(httpPort),
        AUTOTLS_DATA: await tempDir(),
      });
      try {
        const rootFile = /Local CA root: (\S+)/.exec(example.output())?.[1] ?? '';
        expect(example.output()).toContain(`https://127.0.0.1:${httpsPort}/`);
        for (const host of ['127.0.0.1', 'localhost']) {
          const url = `https://${host}:${httpsPort}/`;
          const { stdout } = await run('curl', [
            '-sS',
            '--max-time',
            '10',
            '--resolve',
            `localhost:${httpsPort}:127.0.0.1`,
            '--cacert',
            rootFile,
            url,
          ]);
          expect(stdout).toContain('Hello over HTTPS');
        }
      } finally {
        await example.stop();
      }
    },
  );

  it('says in one line, without a stack trace, that the port is taken', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, resolve));
    const [httpPort] = (await freePorts(1)) as [number];
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const result = await run(process.execPath, ['examples/express/server.js'], {
        cwd: root,
        env: {
          ...process.env,
          HTTPS_PORT: String(port),
          HTTP_PORT: String(httpPort),
          AUTOTLS_DATA: await tempDir(),
          AUTOTLS_LOG_LEVEL: 'warn',
        },
      }).catch((error: { code: number; stderr: string }) => error);
      expect('code' in result ? result.code : 0).toBe(1);
      const stderr = 'stderr' in result ? result.stderr.trim() : '';
      expect(stderr.split('\n')).toHaveLength(1);
      expect(stderr).toMatch(new RegExp(`${port}.*already in use`));
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});
