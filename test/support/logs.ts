/** @module test/support/logs — a pino-compatible logger that keeps every line for assertions. */
import type { Logger } from '@autotls/core';

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  [field: string]: unknown;
}

export interface CapturedLogger extends Logger {
  lines: LogLine[];
  /** Lines whose message equals `msg`. */
  find(msg: string): LogLine[];
}

export function captureLogger(echo = Boolean(process.env.AUTOTLS_TEST_LOGS)): CapturedLogger {
  const lines: LogLine[] = [];
  const make = (bindings: Record<string, unknown>): Logger => {
    const at =
      (level: LogLine['level']) =>
      (fields: Record<string, unknown>, msg: string): void => {
        const line = { ...bindings, ...fields, level, msg };
        lines.push(line);
        if (echo) console.log(JSON.stringify(line));
      };
    return {
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return Object.assign(make({}), { lines, find: (msg: string) => lines.filter((line) => line.msg === msg) });
}
