/** @module Typed errors that decide what happens next: a bad option, and a failure no waiting can fix. */

/**
 * An option that cannot work, found when the manager (or an issuer) is built: names the option and the
 * value, so the message alone tells the user what to change.
 */
export class ConfigurationError extends TypeError {
  constructor(
    /** The option's path, e.g. `retry.intervalsMs` or `domains[2]`. */
    readonly option: string,
    readonly value: unknown,
    expected: string,
  ) {
    super(`autotls: option ${option} ${expected} (got ${describe(value)})`);
    this.name = 'ConfigurationError';
  }
}

/**
 * A failure that no retry can fix (missing EAB credentials, a profile the CA does not list, a configuration
 * mistake): the obtain fails once, loudly, instead of entering the 30-day retry schedule.
 */
export class NoRetryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NoRetryError';
  }
}

/** True for a {@link NoRetryError}, or an aggregate whose every cause is one (all issuers failed that way). */
export function isNoRetry(error: unknown): boolean {
  if (error instanceof NoRetryError) return true;
  return error instanceof AggregateError && error.errors.length > 0 && error.errors.every(isNoRetry);
}

function describe(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
