/**
 * The docs are tests: every JavaScript/TypeScript block of README.md, packages/*\/README.md and docs/*.md
 * runs as a program from the packed packages (the consumer project of test/packages.test.ts) against
 * Pebble, and must serve a certificate that verifies with SNI = the first name it manages. The only
 * substitutions are the ones docs/doc-tests.md lists: the environment points the default issuers at Pebble
 * (`AUTOTLS_ACME_CA`, `AUTOTLS_ACME_CA_ROOT`) and the data at a fresh directory (`AUTOTLS_DATA`); names and
 * ports stay as written, because the programs run inside a network namespace of their own, where ports
 * 80 and 443 are free and every name resolves (through pebble-challtestsrv) to 127.0.0.1.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumerProject } from './support/consumer.js';
import { allSnippets, type DocSnippet, httpsPortOf, servedNames } from './support/doc-snippets.js';
import {
  insideTestNamespace,
  type NamespaceRun,
  namespaceUnavailable,
  runInNamespace,
} from './support/netns.js';
import { type ChallTestSrv, type Pebble, startChallTestSrv, startPebble } from './support/pebble.js';
import { startProcess } from './support/processes.js';
import { handshake, tempDir } from './support/servers.js';
import { testTls } from './support/tls.js';

/** Set by the outer run for the inner one: the consumer project the snippets import from. */
const PROJECT_ENV = 'AUTOTLS_DOC_TEST_PROJECT';
const SERVE_TIMEOUT_MS = 30_000;

const snippets = await allSnippets();
const runnable = snippets.filter((snippet) => snippet.skip === undefined);

describe('the documentation blocks', () => {
  it('are each runnable, or marked `<!-- doc-test: skip reason -->`', () => {
    expect(runnable.length).toBeGreaterThanOrEqual(8);
    for (const snippet of runnable) {
      expect(servedNames(snippet.code), `${snippet.id} manages no name the runner can check`).not.toEqual([]);
    }
  });
});

if (!insideTestNamespace()) {
  const unavailable = namespaceUnavailable();
  describe.skipIf(unavailable !== undefined)(
    `every documentation block serves its certificate from Pebble${unavailable ? ` (skipped: ${unavailable})` : ''}`,
    () => {
      let run: NamespaceRun;
      beforeAll(async () => {
        // Installed here, outside the namespace, where the npm registry can be reached.
        process.env[PROJECT_ENV] = (await consumerProject(6)).dir;
        run = await runInNamespace(import.meta.url, ['ip link set lo up'], 240_000);
      }, 540_000);

      it.each(runnable.map((snippet) => snippet.id))('%s', (id) => {
        expect(run.status(id), run.failures(id)).toBe('passed');
      });
    },
  );
} else {
  describe('inside the namespace', () => {
    let dns: ChallTestSrv;
    let pebble: Pebble;

    beforeAll(async () => {
      dns = await startChallTestSrv();
      pebble = await startPebble({ dnsServer: dns.dnsAddress, httpPort: 80, tlsPort: 443 });
    });

    afterAll(async () => {
      await pebble?.stop();
      await dns?.stop();
    });

    it.each(runnable.map((snippet) => [snippet.id, snippet] as const))('%s', async (_id, snippet) => {
      await runSnippet(snippet, pebble);
    });
  });
}

/** Writes the block into the consumer project, runs it, and checks the certificate it serves. */
async function runSnippet(snippet: DocSnippet, pebble: Pebble): Promise<void> {
  const project = process.env[PROJECT_ENV];
  if (!project) throw new Error(`${PROJECT_ENV} is not set: the outer run installs the consumer project`);
  const file = path.join(project, 'fixtures', `doc-${snippet.id.replace(/[^\w]+/g, '-')}.mjs`);
  const code =
    snippet.language === 'ts'
      ? ts.transpileModule(snippet.code, {
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
        }).outputText
      : snippet.code;
  await writeFile(file, code);
  const data = await tempDir('autotls-doc-data-');
  const [name] = servedNames(snippet.code) as [string];
  const port = httpsPortOf(snippet.code);
  const program = await startProcess({
    name: snippet.id,
    command: process.execPath,
    args: [file],
    cwd: project,
    env: {
      AUTOTLS_ACME_CA: pebble.directoryUrl,
      AUTOTLS_ACME_CA_ROOT: (await testTls()).caPath,
      AUTOTLS_DATA: data,
      AUTOTLS_LOG_LEVEL: 'warn',
    },
    ready: { port },
    timeoutMs: SERVE_TIMEOUT_MS,
  });
  try {
    const roots = async () => {
      const local = await readFile(path.join(data, 'pki/authorities/local/root.crt'), 'utf8').catch(() => '');
      return `${await pebble.rootPem()}\n${local}`;
    };
    const deadline = Date.now() + SERVE_TIMEOUT_MS;
    let last: Awaited<ReturnType<typeof handshake>> | Error | undefined;
    while (Date.now() < deadline && program.running) {
      last = await handshake(port, name, await roots()).catch((error: Error) => error);
      if (!(last instanceof Error) && last.authorized) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const detail = `${snippet.id} serving ${name} on :${port}\n${program.output()}`;
    expect(last instanceof Error ? last.message : last?.error?.message, detail).toBeUndefined();
    expect(last instanceof Error ? false : last?.authorized, detail).toBe(true);
    expect(last instanceof Error ? '' : last?.cert.subjectaltname, detail).toContain(`DNS:${name}`);
  } finally {
    await program.stop();
  }
}
