/**
 * @module Noticing a DNS fix early: while a name that failed for a DNS or connection reason waits for its
 * next attempt, re-resolve it and wake up as soon as the answer changes (Caddy waits for the schedule).
 */
import type { Logger } from './log.js';

export interface DnsResolver {
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
}

/** A comparable summary of the name's A/AAAA answer; errors (NXDOMAIN…) summarise as their code. */
export async function dnsAnswer(resolver: DnsResolver, name: string): Promise<string> {
  const host = name.replace(/^\*\./, '');
  const answer = (lookup: Promise<string[]>) =>
    lookup.then(
      (addresses) => [...addresses].sort().join(','),
      (error: NodeJS.ErrnoException) => error.code ?? 'error',
    );
  const [v4, v6] = await Promise.all([answer(resolver.resolve4(host)), answer(resolver.resolve6(host))]);
  return `A=${v4} AAAA=${v6}`;
}

export interface RetryWait {
  name: string;
  delayMs: number;
  /** The answer when the attempt failed; `undefined` for failures DNS cannot fix (plain sleep). */
  dnsAtFailure: string | undefined;
  recheckMs: number;
  resolver: DnsResolver;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  signal: AbortSignal;
  logger: Logger;
}

/** Sleeps `delayMs`, or less when the name's DNS answer changes from `dnsAtFailure`. Rejects when `signal` aborts. */
export async function waitBeforeRetry(wait: RetryWait): Promise<void> {
  const { name, dnsAtFailure, signal, sleep } = wait;
  if (dnsAtFailure === undefined) return sleep(wait.delayMs, signal);
  const wake = new AbortController();
  const onStop = () => wake.abort(signal.reason);
  signal.addEventListener('abort', onStop, { once: true });
  const watch = async () => {
    while (!wake.signal.aborted) {
      await sleep(wait.recheckMs, wake.signal);
      const now = await dnsAnswer(wait.resolver, name);
      if (now !== dnsAtFailure) {
        wait.logger.info(
          { identifier: name, dns_before: dnsAtFailure, dns_now: now },
          'DNS answer changed; retrying now',
        );
        wake.abort();
      }
    }
  };
  watch().catch(() => {});
  try {
    await sleep(wait.delayMs, wake.signal);
  } catch (reason) {
    if (signal.aborted) throw reason;
  } finally {
    wake.abort();
    signal.removeEventListener('abort', onStop);
  }
}
