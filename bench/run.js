/**
 * @module bench/run — `pnpm bench [--quick | --full] [--only first,handshakes,scale,many,…] [--skip-caddy]`: runs
 * each scenario against real loopback servers, prints a table, and writes bench/results/<timestamp>.json
 * with medians, min/max, raw samples and the environment. `--quick` is the smoke run CI executes; `--full` adds the big sizes (100,000 names). A
 * scenario that breaks fails the run (exit 1); a figure that misses its target is only marked MISS.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { caddyInstalled } from './lib/caddy.js';
import { environment } from './lib/environment.js';
import { ms, printTable, row, writeResults } from './lib/report.js';
import * as cluster from './scenarios/cluster.js';
import * as first from './scenarios/first-certificate.js';
import * as handshakes from './scenarios/handshakes.js';
import * as many from './scenarios/many-names.js';
import * as onDemand from './scenarios/on-demand.js';
import * as scale from './scenarios/scale.js';

const scenarios = { first, handshakes, scale, many, 'on-demand': onDemand, cluster };

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    full: { type: 'boolean', default: false },
    only: { type: 'string' },
    'skip-caddy': { type: 'boolean', default: false },
  },
});
const options = { quick: args.quick, full: args.full, withCaddy: !args['skip-caddy'] && caddyInstalled() };
const selected = args.only ? args.only.split(',').map((name) => name.trim()) : Object.keys(scenarios);
const unknown = selected.filter((name) => !scenarios[name]);
if (unknown.length > 0) throw new Error(`unknown scenario ${unknown}; known: ${Object.keys(scenarios)}`);

const startedAt = new Date();
const env = environment();
console.log(
  `autotls bench${options.quick ? ' --quick' : ''}${options.full ? ' --full' : ''}: node ${env.node}, ${env.cpuCount} × ${env.cpuModel}`,
);
console.log(
  `load ${env.loadAverage.join(' ')}; pebble ${env.pebble}, caddy ${env.caddy}; commit ${env.gitCommit}`,
);

const results = {};
const errors = {};
const rows = [];
for (const name of selected) {
  const { title, run, rows: rowsOf } = scenarios[name];
  const log = (message) => console.log(`[${title}] ${message}`);
  const start = performance.now();
  try {
    results[name] = await run({ ...options, log });
    results[name].durationMs = performance.now() - start;
    rows.push(...rowsOf(results[name], options));
  } catch (error) {
    errors[name] = error instanceof Error ? (error.stack ?? error.message) : String(error);
    log(`FAILED: ${errors[name]}`);
    rows.push(row(title, 'error', errors[name].split('\n')[0], '', false));
  }
  log(`done in ${ms(performance.now() - start)}`);
}

console.log('');
printTable(rows);
const finishedAt = new Date();
const file = await writeResults(fileURLToPath(new URL('./results', import.meta.url)), startedAt, {
  startedAt: startedAt.toISOString(),
  finishedAt: finishedAt.toISOString(),
  durationMs: finishedAt - startedAt,
  quick: options.quick,
  environment: { ...env, loadAverageAtEnd: environment().loadAverage },
  table: rows,
  scenarios: results,
  errors,
});
console.log(`\n${Math.round((finishedAt - startedAt) / 1000)} s; results in ${file}`);
process.exitCode = Object.keys(errors).length > 0 ? 1 : 0;
