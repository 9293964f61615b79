/**
 * @module test/support/lifecycle — a CA whose certificates live an hour, managers that look for renewals
 * often, moving a manager's clock forward without waiting, and waiting for what follows.
 */
import type { EventEmitter } from 'node:events';
import { CertManager, type CertManagerEvents, type CertManagerOptions } from '@autotls/core';
import type { TestClock } from './clock.js';
import { startCAs } from './index.js';
import { captureLogger } from './logs.js';
import type { Pebble } from './pebble.js';
import { freePort } from './ports.js';
import { tempDir } from './servers.js';

/** One hour: the clock is moved, not waited on, so the length only sets the scale. */
export const CERTIFICATE_LIFETIME_MS = 3600_000;
/** Fast maintenance passes, so a test sees the loop act within a fraction of a second. */
export const CHECK_INTERVAL_MS = 100;

export type CertRenewedEvent = CertManagerEvents['cert_renewed'][0];

export interface ShortLivedCA {
  pebble: Pebble;
  /** Where Pebble validates HTTP-01 (where the manager under test answers). */
  httpPort: number;
  /** Pebble's issuing root, to verify served certificates against. */
  rootPem: string;
  /** Stops Pebble and its challtestsrv. */
  stop(): Promise<void>;
}

/** A Pebble (with its own challtestsrv) that issues certificates valid for CERTIFICATE_LIFETIME_MS. */
export async function startShortLivedCA(): Promise<ShortLivedCA> {
  const httpPort = await freePort();
  const cas = await startCAs({
    names: ['ca'],
    httpPort,
    common: { certificateValidityPeriodSeconds: CERTIFICATE_LIFETIME_MS / 1000 },
  });
  const pebble = cas.pebbles.ca;
  try {
    return { pebble, httpPort, rootPem: await pebble.rootPem(), stop: () => cas.stopAll() };
  } catch (error) {
    await cas.stopAll();
    throw error;
  }
}

/**
 * A manager whose maintenance loop looks every CHECK_INTERVAL_MS; a fresh storage directory unless given one.
 * `issuers` is required, so a test never falls back to the default (public) CAs.
 */
export async function renewingManager(
  options: CertManagerOptions & Required<Pick<CertManagerOptions, 'issuers'>>,
): Promise<CertManager> {
  return new CertManager({
    logger: captureLogger(),
    renewal: { checkIntervalMs: CHECK_INTERVAL_MS },
    ...options,
    storage: options.storage ?? (await tempDir()),
  });
}

/**
 * Moves `clock` `offsetMs` ahead and resolves with the manager's next `cert_renewed`. The clock goes back to
 * real time at that event: under the moved clock the renewed certificate would look as old as the first one.
 */
export function ageUntilRenewed(
  manager: CertManager,
  clock: TestClock,
  offsetMs: number,
  timeoutMs?: number,
): Promise<CertRenewedEvent> {
  manager.once('cert_renewed', () => {
    clock.offsetMs = 0;
  });
  const renewed = nextEvent<CertRenewedEvent>(manager, 'cert_renewed', timeoutMs);
  clock.offsetMs = offsetMs;
  return renewed;
}

/** Resolves with the next `event` (its first argument); rejects after `timeoutMs`. */
export function nextEvent<T = unknown>(emitter: EventEmitter, event: string, timeoutMs = 20_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`no ${event} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (payload: T) => {
      clearTimeout(timer);
      resolve(payload);
    };
    emitter.once(event, listener);
  });
}

/** Polls `condition` every 25 ms until it holds; rejects after `timeoutMs` with `what` in the message. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Resolves after `ms` of real time (only to show that something did not happen meanwhile). */
export const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
