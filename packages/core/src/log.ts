/** @module Structured JSON logging: a pino-compatible logger interface and the default pino logger. */
import { pino } from 'pino';
import { prettyDestination, wantsPrettyLogs } from './log-pretty.js';

type LogFn = (fields: Record<string, unknown>, message: string) => void;

/** The subset of pino's API autotls uses; any pino logger (or a compatible one) fits. */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

/**
 * The default logger, level from `AUTOTLS_LOG_LEVEL` (default `info`): readable lines on a terminal, JSON
 * lines otherwise (`AUTOTLS_LOG_FORMAT=json|pretty` decides instead).
 */
export function createDefaultLogger(): Logger {
  const options = { name: 'autotls', level: process.env.AUTOTLS_LOG_LEVEL ?? 'info' };
  return wantsPrettyLogs() ? pino(options, prettyDestination()) : pino(options);
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

/** Turns any thrown value into log fields, keeping an ACME problem's structure. */
export function errorFields(error: unknown): Record<string, unknown> {
  const links = (error as { links?: unknown[] } | undefined)?.links;
  const withLinks = Array.isArray(links) && links.length > 0 ? { links } : {};
  if (error && typeof error === 'object' && 'problem' in error) {
    const { problem } = error as { problem: unknown };
    return { error: String((error as { message?: unknown }).message), problem, ...withLinks };
  }
  return { error: error instanceof Error ? error.message : String(error), ...withLinks };
}
