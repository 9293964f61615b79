/** @module Small checks for options, shared by the manager's and the issuers' configuration. */
import { ConfigurationError } from './errors.js';

export const POSITIVE_MS = 'must be a positive number of milliseconds';
export const POSITIVE_INTEGER = 'must be a positive whole number';

/** Throws a {@link ConfigurationError} for `option` unless `test(value)`. */
export function check(
  option: string,
  value: unknown,
  test: (value: unknown) => boolean,
  expected: string,
): void {
  if (!test(value)) throw new ConfigurationError(option, value, expected);
}

/** Like {@link check}, for an option that may be left out; returns the value. */
export function optional<T>(
  option: string,
  value: T | undefined,
  test: (value: unknown) => boolean,
  expected: string,
): T | undefined {
  if (value !== undefined) check(option, value, test, expected);
  return value;
}

/** Infinity is allowed: "never" is a valid duration (e.g. never give up retrying). */
export function isPositiveMs(value: unknown): boolean {
  return typeof value === 'number' && value > 0 && !Number.isNaN(value);
}

export function isPositiveInteger(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

export function isUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    return ['http:', 'https:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

/** An object with these methods. */
export function isFunctionOf(value: unknown, ...methods: string[]): boolean {
  if (typeof value !== 'object' || value === null) return false;
  return methods.every((method) => typeof (value as Record<string, unknown>)[method] === 'function');
}
