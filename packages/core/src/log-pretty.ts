/**
 * @module Human-readable log lines for a terminal: `12:04:05 INFO  tls.obtain  certificate obtained  identifier=example.com`.
 * The default logger uses it when stdout is a TTY (`AUTOTLS_LOG_FORMAT=json` keeps JSON there too); pipes,
 * files and log shippers get pino's JSON lines.
 */

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO ',
  40: 'WARN ',
  50: 'ERROR',
  60: 'FATAL',
};
const COLORS: Record<number, string> = { 40: '\x1b[33m', 50: '\x1b[31m', 60: '\x1b[31m' };
const DIM = '\x1b[2m';
const RESET = '\x1b[0m';
/** pino's own fields, shown in the line's head or not at all. */
const HEAD_FIELDS = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'logger', 'v']);

/** Whether the default logger should print readable lines rather than JSON. */
export function wantsPrettyLogs(env = process.env, stdout: { isTTY?: boolean } = process.stdout): boolean {
  if (env.AUTOTLS_LOG_FORMAT === 'json') return false;
  if (env.AUTOTLS_LOG_FORMAT === 'pretty') return true;
  return stdout.isTTY === true;
}

/** One pino JSON record as one readable line (colors only when `color`). */
export function prettyLine(record: Record<string, unknown>, color = false): string {
  const level = Number(record.level);
  const time = new Date(Number(record.time)).toTimeString().slice(0, 8);
  const fields = Object.entries(record)
    .filter(([key]) => !HEAD_FIELDS.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  const head = `${time} ${LEVELS[level] ?? level}${record.logger ? ` ${record.logger}` : ''}`;
  const body = [String(record.msg ?? ''), ...fields].join('  ');
  if (!color) return `${head}  ${body}\n`;
  return `${DIM}${head}${RESET}  ${COLORS[level] ?? ''}${body}${COLORS[level] ? RESET : ''}\n`;
}

/** A pino destination that writes each JSON line as a readable one. */
export function prettyDestination(out: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout) {
  return {
    write(line: string): void {
      try {
        out.write(prettyLine(JSON.parse(line) as Record<string, unknown>, out.isTTY === true));
      } catch {
        out.write(line);
      }
    },
  };
}
