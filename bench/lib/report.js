/** @module bench/lib/report — the printed table and the JSON file of a bench run. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** A table row: one figure, its target (if any), and whether it met it. */
export function row(scenario, figure, value, target = '', met = undefined) {
  return { scenario, figure, value, target, status: met === undefined ? '' : met ? 'ok' : 'MISS' };
}

export function printTable(rows, write = console.log) {
  const headers = { scenario: 'scenario', figure: 'figure', value: 'value', target: 'target', status: '' };
  const columns = Object.keys(headers);
  const widths = columns.map((column) =>
    Math.max(headers[column].length, ...rows.map((r) => String(r[column]).length)),
  );
  const line = (r) =>
    columns
      .map((column, i) => String(r[column]).padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  write(line(headers));
  write(widths.map((width) => '─'.repeat(width)).join('  '));
  let previous;
  for (const r of rows) {
    write(line({ ...r, scenario: r.scenario === previous ? '' : r.scenario }));
    previous = r.scenario;
  }
}

/** Writes `bench/results/<timestamp>.json`; returns its path. */
export async function writeResults(directory, startedAt, results) {
  await mkdir(directory, { recursive: true });
  const file = path.join(directory, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}

export const ms = (value) =>
  value >= 10_000
    ? `${(value / 1000).toFixed(1)} s`
    : value >= 100
      ? `${Math.round(value)} ms`
      : `${value.toFixed(1)} ms`;
export const range = (summary, format = ms) =>
  `${format(summary.median)} (min ${format(summary.min)}, max ${format(summary.max)})`;
