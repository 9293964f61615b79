/**
 * @module test/support/netns — running a test file inside a private network + mount namespace that the test
 * makes itself (`unshare --net --mount`), for scenarios that need addresses or ports no test may take on the
 * machine: non-loopback IP addresses on a veth pair, a CA that validates on ports 80/443, an /etc/hosts of
 * our own (bind-mounted inside the namespace only; the machine's file is never touched).
 *
 * The test runner stays outside: the file runs itself again under `unshare` in a child vitest, and the
 * outer run reports the inner run's results test by test.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandExists, makeTempDir } from './processes.js';

/** Set in the child: the test file is inside its namespace and runs the real scenarios. */
const INSIDE_ENV = 'AUTOTLS_TEST_NETNS';

/** The addresses the veth pair carries (TEST-NET-1 and the IPv6 documentation prefix: never routed). */
export const TEST_IPV4 = '192.0.2.10';
export const TEST_IPV6 = '2001:db8::10';

/** Shell steps that give the namespace loopback and a veth pair with {@link TEST_IPV4} and {@link TEST_IPV6}. */
export const VETH_SETUP: readonly string[] = [
  'ip link set lo up',
  // `dummy` links are missing from some kernels; a veth pair is always there.
  'ip link add autotls0 type veth peer name autotls1',
  `ip addr add ${TEST_IPV4}/24 dev autotls0`,
  // nodad: usable at once, without waiting out duplicate address detection.
  `ip -6 addr add ${TEST_IPV6}/64 dev autotls0 nodad`,
  'ip link set autotls1 up',
  'ip link set autotls0 up',
];

/** Whether this process is the child running inside its namespace. */
export function insideTestNamespace(): boolean {
  return process.env[INSIDE_ENV] === '1';
}

/** Why no namespace can be made here (not root, no unshare, a kernel that refuses); `undefined` if it can. */
export function namespaceUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'needs root to create a network namespace (unshare --net --mount)';
  for (const command of ['unshare', 'ip', 'mount']) {
    if (!commandExists(command)) return `${command} is not installed`;
  }
  const probe = spawnSync(
    'unshare',
    ['--net', '--mount', 'sh', '-c', 'ip link add p0 type veth peer name p1'],
    { encoding: 'utf8', timeout: 10_000 },
  );
  if (probe.status !== 0) {
    return `unshare --net --mount with a veth pair failed: ${(probe.stderr || probe.error?.message || '').trim()}`;
  }
  return undefined;
}

export type InnerStatus = 'passed' | 'failed' | 'skipped' | 'pending' | 'todo' | 'missing';

export interface NamespaceRun {
  /** Inner test title → its outcome. */
  status(title: string): InnerStatus;
  /** The inner failure messages of `title`, for the outer assertion's message. */
  failures(title: string): string;
  /** What the child printed (vitest's own output and the logs), for a failed run. */
  output: string;
}

interface JsonReport {
  testResults?: Array<{
    message?: string;
    assertionResults?: Array<{ title: string; status: InnerStatus; failureMessages?: string[] }>;
  }>;
}

/**
 * Runs `testFile` (an absolute path or a `file:` URL) with vitest inside a fresh network + mount namespace,
 * after `setup` (shell commands run as root inside it). Resolves with the inner results.
 * @example
 * const run = await runInNamespace(import.meta.url, VETH_SETUP);
 * expect(run.status('gets an IP certificate')).toBe('passed');
 */
export async function runInNamespace(
  testFile: string,
  setup: readonly string[],
  timeoutMs = 90_000,
): Promise<NamespaceRun> {
  const file = testFile.startsWith('file:') ? fileURLToPath(testFile) : testFile;
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const dir = makeTempDir('autotls-netns-');
  const reportPath = join(dir, 'report.json');
  const vitest = join(root, 'node_modules/vitest/vitest.mjs');
  const script = [
    'set -e',
    ...setup,
    `exec "${process.execPath}" "${vitest}" run "${file}" --reporter=json --outputFile="${reportPath}"`,
  ].join('\n');
  const scriptPath = join(dir, 'inside.sh');
  await writeFile(scriptPath, script);
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn('unshare', ['--net', '--mount', '--', 'sh', scriptPath], {
      cwd: root,
      env: { ...process.env, [INSIDE_ENV]: '1', VITEST_POOL_ID: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
  });
  const report = (await readFile(reportPath, 'utf8').then(
    (text) => JSON.parse(text) as JsonReport,
    () => ({}) as JsonReport,
  )) as JsonReport;
  const results = report.testResults?.flatMap((result) => result.assertionResults ?? []) ?? [];
  const fileMessage = report.testResults?.map((result) => result.message ?? '').join('\n') ?? '';
  const find = (title: string) => results.find((result) => result.title === title);
  return {
    status: (title) => find(title)?.status ?? 'missing',
    failures: (title) =>
      [...(find(title)?.failureMessages ?? []), fileMessage, output.slice(-4_000)].join('\n'),
    output,
  };
}
