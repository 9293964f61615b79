/** @module test/support/dns-providers — the DNS providers tests use besides rfc2136(): challtestsrv's API. */
import type { DnsProvider } from '@autotls/core';
import { postJson } from './http.js';

function fqdn(host: string): string {
  const lower = host.toLowerCase();
  return lower.endsWith('.') ? lower : `${lower}.`;
}

/**
 * A DNS provider on pebble-challtestsrv's management API (`managementUrl`, e.g. challtestsrv.managementUrl).
 * challtestsrv can only clear every TXT value at a host, so cleanup clears and adds back the values still
 * held: one value goes, the others stay, as the provider contract asks. Records are served as soon as the
 * API call returns, so it confirms propagation itself.
 */
export function challtestsrvProvider(managementUrl: string): DnsProvider {
  const held = new Map<string, string[]>();
  const call = (path: string, body: unknown) => postJson(`${managementUrl}/${path}`, body);
  return {
    confirmsPropagation: true,
    async present(name, value) {
      const host = fqdn(name);
      await call('set-txt', { host, value });
      held.set(host, [...(held.get(host) ?? []), value]);
    },
    async cleanup(name, value) {
      const host = fqdn(name);
      const remaining = (held.get(host) ?? []).filter((other) => other !== value);
      await call('clear-txt', { host });
      for (const other of remaining) await call('set-txt', { host, value: other });
      held.set(host, remaining);
    },
  };
}
