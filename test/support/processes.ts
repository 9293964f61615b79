/** @module test/support/processes — start helper processes, capture their output, wait until ready, stop them. */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';

/** A readiness condition: a TCP port accepting, a line in the output, or any async check. */
export type ReadyCheck =
  | { port: number; host?: string }
  | { output: string | RegExp }
  | { check: () => boolean | Promise<boolean>; description?: string };

export interface StartProcessOptions {
  command: string;
  args?: readonly string[];
  /** Used in messages; default: the command's basename. */
  name?: string;
  cwd?: string;
  /** Merged over process.env (or used alone when inheritEnv is false). */
  env?: Record<string, string | undefined>;
  /** Default true. When false the child gets only PATH plus `env`. */
  inheritEnv?: boolean;
  /** All must pass (checked in order, every 20 ms) before startProcess resolves. */
  ready?: ReadyCheck | readonly ReadyCheck[];
  /** Default 10 000 ms. On timeout the process is stopped and the error includes its output. */
  timeoutMs?: number;
  /** Error message when the command is not found on PATH. */
  notInstalledMessage?: string;
  /** Grace period between SIGTERM and SIGKILL in stop(); default 2000 ms. */
  killAfterMs?: number;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** True until the process has exited. */
  readonly running: boolean;
  /** Resolves when the process exits (never rejects). */
  readonly exited: Promise<ExitStatus>;
  /** Everything the process wrote to stdout and stderr so far, interleaved in arrival order. */
  output(): string;
  /** How many times `pattern` occurs in the output (a string counts substrings; a RegExp counts matches). */
  countOutput(pattern: string | RegExp): number;
  /** Resolves once `pattern` appears in the output; rejects with the output on timeout or exit. */
  waitForOutput(pattern: string | RegExp, timeoutMs?: number): Promise<void>;
  /** SIGTERM, SIGKILL after the grace period, then await exit. Safe to call more than once. */
  stop(): Promise<void>;
}

interface Registry {
  processes: Set<ManagedProcess>;
  tempDirs: Set<string>;
  hooked: boolean;
}

// Shared through globalThis so that every copy of this module in a process (vitest may load it more than
// once) uses one registry and installs the exit hook once.
const registryKey = Symbol.for('autotls.test.support.processes');
const globalSlots = globalThis as unknown as Record<symbol, Registry | undefined>;
const registry: Registry = globalSlots[registryKey] ?? {
  processes: new Set(),
  tempDirs: new Set(),
  hooked: false,
};
globalSlots[registryKey] = registry;

function killAllSync(): void {
  for (const child of registry.processes) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  registry.processes.clear();
  for (const dir of registry.tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  registry.tempDirs.clear();
}

function installExitHook(): void {
  if (registry.hooked) return;
  registry.hooked = true;
  process.on('exit', killAllSync);
  // A signal that nobody handles would end this process without 'exit': take the children along, then
  // re-raise so the default action (termination) still happens.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    if (process.listenerCount(signal) > 0) continue;
    process.once(signal, () => {
      killAllSync();
      process.kill(process.pid, signal);
    });
  }
}

/** Processes started by this module that have not exited or been stopped yet. */
export function liveProcesses(): ManagedProcess[] {
  return [...registry.processes];
}

/** Stop every process started through this module (in parallel). */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...registry.processes].map((child) => child.stop()));
}

/**
 * Whether a PID still runs: `process.kill(pid, 0)` does not throw and (on Linux) it is not a zombie. Orphans
 * killed at exit stay zombies until PID 1 reaps them, which on this VM takes up to ~2 s.
 */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state …"; comm may contain spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** Whether `command` is an executable path or is found on PATH. */
export function commandExists(command: string): boolean {
  const candidates = command.includes('/')
    ? [command]
    : (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir || '.', command));
  return candidates.some((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** A fresh directory under the OS temp dir, removed when this process exits. */
export function makeTempDir(prefix: string): string {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  registry.tempDirs.add(dir);
  return dir;
}

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether something accepts TCP connections on host:port right now. */
export function tcpAccepting(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const done = (result: boolean) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export interface WaitForOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** What we are waiting for, for the timeout message. */
  description?: string;
}

/** Poll `condition` (errors count as false) until it returns true; rejects after timeoutMs (default 10 s). */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  options: WaitForOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await condition()) return;
    } catch {
      // not yet
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.description ?? 'a condition'}`);
    }
    await delay(options.intervalMs ?? 20);
  }
}

function describeCheck(check: ReadyCheck): string {
  if ('port' in check) return `TCP ${check.host ?? '127.0.0.1'}:${check.port} accepting`;
  if ('output' in check) return `output matching ${String(check.output)}`;
  return check.description ?? 'readiness check';
}

function countMatches(text: string, pattern: string | RegExp): number {
  if (typeof pattern === 'string') {
    if (pattern === '') return 0;
    let count = 0;
    for (let at = text.indexOf(pattern); at !== -1; at = text.indexOf(pattern, at + pattern.length)) count++;
    return count;
  }
  const flags = pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`;
  return [...text.matchAll(new RegExp(pattern.source, flags))].length;
}

function matches(text: string, pattern: string | RegExp): boolean {
  return typeof pattern === 'string'
    ? text.includes(pattern)
    : new RegExp(pattern.source, pattern.flags).test(text);
}

function withOutput(message: string, output: string): string {
  const text = output.length > 20_000 ? `…${output.slice(-20_000)}` : output;
  return `${message}\n--- captured output ---\n${text || '(none)'}\n--- end of output ---`;
}

class ChildHandle implements ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly exited: Promise<ExitStatus>;
  #output = '';
  #running = true;
  #closed: Promise<void>;
  #stopping: Promise<void> | undefined;
  #killAfterMs: number;

  constructor(name: string, child: ChildProcess, killAfterMs: number) {
    if (child.pid === undefined) throw new Error(`${name} has no pid`);
    this.name = name;
    this.pid = child.pid;
    this.#killAfterMs = killAfterMs;
    const append = (chunk: string) => {
      this.#output += chunk;
    };
    child.stdout?.setEncoding('utf8').on('data', append);
    child.stderr?.setEncoding('utf8').on('data', append);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#running = false;
        registry.processes.delete(this);
        resolve({ code, signal });
      });
    });
    this.#closed = new Promise((resolve) => child.once('close', () => resolve()));
    // Errors after spawn (e.g. a failed kill) must not crash the test process.
    child.on('error', () => {});
  }

  get running(): boolean {
    return this.#running;
  }

  output(): string {
    return this.#output;
  }

  countOutput(pattern: string | RegExp): number {
    return countMatches(this.#output, pattern);
  }

  async waitForOutput(pattern: string | RegExp, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!matches(this.#output, pattern)) {
      if (!this.#running) {
        throw new Error(withOutput(`${this.name} exited before printing ${String(pattern)}`, this.#output));
      }
      if (Date.now() >= deadline) {
        throw new Error(
          withOutput(`${this.name} did not print ${String(pattern)} within ${timeoutMs} ms`, this.#output),
        );
      }
      await delay(20);
    }
  }

  #signal(signal: NodeJS.Signals): void {
    try {
      process.kill(this.pid, signal);
    } catch {
      // already gone
    }
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      if (this.#running) {
        this.#signal('SIGTERM');
        const timer = setTimeout(() => this.#signal('SIGKILL'), this.#killAfterMs);
        await this.exited;
        clearTimeout(timer);
      }
      // Let the pipes drain so output() is complete, but don't hang on a grandchild holding them.
      await Promise.race([this.#closed, delay(250)]);
      registry.processes.delete(this);
    })();
    return this.#stopping;
  }
}

async function passes(check: ReadyCheck, handle: ChildHandle, budgetMs: number): Promise<boolean> {
  if ('output' in check) return matches(handle.output(), check.output);
  const attempt = 'port' in check ? tcpAccepting(check.port, check.host, budgetMs) : check.check();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), budgetMs);
  });
  try {
    return await Promise.race([Promise.resolve(attempt).catch(() => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Spawn a process (stdin ignored, stdout+stderr captured), track it for cleanup at exit, and wait until
 * every readiness check passes. If it exits early or the checks time out, it is stopped and the error
 * carries its output.
 */
export async function startProcess(options: StartProcessOptions): Promise<ManagedProcess> {
  const name = options.name ?? basename(options.command);
  if (!commandExists(options.command)) {
    throw new Error(options.notInstalledMessage ?? `${options.command} is not installed (not found on PATH)`);
  }
  installExitHook();
  const env =
    options.inheritEnv === false
      ? { PATH: process.env.PATH, ...options.env }
      : { ...process.env, ...options.env };
  const child = spawn(options.command, [...(options.args ?? [])], {
    cwd: options.cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) {
    const error = await new Promise<Error>((resolve) => child.once('error', resolve));
    throw new Error(`${name} could not be started: ${error.message}`);
  }
  const handle = new ChildHandle(name, child, options.killAfterMs ?? 2000);
  registry.processes.add(handle);

  const checks =
    options.ready === undefined ? [] : Array.isArray(options.ready) ? [...options.ready] : [options.ready];
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  try {
    while (checks.length > 0) {
      const check = checks[0] as ReadyCheck;
      if (await passes(check, handle, Math.max(50, Math.min(1000, deadline - Date.now())))) {
        checks.shift();
        continue;
      }
      if (!handle.running) {
        const status = await handle.exited;
        await handle.stop();
        throw new Error(
          withOutput(
            `${name} exited (code ${status.code}, signal ${status.signal}) before it was ready (${describeCheck(check)})`,
            handle.output(),
          ),
        );
      }
      if (Date.now() >= deadline) {
        await handle.stop();
        throw new Error(
          withOutput(
            `${name} was not ready within ${timeoutMs} ms (waiting for ${describeCheck(check)})`,
            handle.output(),
          ),
        );
      }
      await delay(20);
    }
  } catch (error) {
    await handle.stop();
    throw error;
  }
  return handle;
}
