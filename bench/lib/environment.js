/** @module bench/lib/environment — what the figures were measured on, for the JSON file and the header. */
import { execFileSync } from 'node:child_process';
import os from 'node:os';

function quietly(command, args) {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** Node, OS, CPUs, memory, load, and the versions of the helpers (Pebble, Caddy) and of this checkout. */
export function environment() {
  const cpus = os.cpus();
  const status = quietly('git', ['status', '--porcelain']);
  return {
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpuCount: cpus.length,
    availableParallelism: os.availableParallelism(),
    totalMemoryMiB: Math.round(os.totalmem() / 2 ** 20),
    loadAverage: os.loadavg().map((load) => Math.round(load * 100) / 100),
    pebble: quietly('dpkg-query', ['-W', 'pebble'])?.split('\t')[1] ?? 'unknown',
    caddy: quietly('caddy', ['version'])?.split(/\s/)[0] ?? 'not installed',
    gitCommit: quietly('git', ['rev-parse', '--short', 'HEAD']) ?? 'unknown',
    gitDirty: status === undefined ? undefined : status.length > 0,
  };
}
