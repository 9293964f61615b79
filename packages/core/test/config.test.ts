import { acme, CertManager, type CertManagerOptions, ConfigurationError, resolveConfig } from '@autotls/core';
import { describe, expect, it } from 'vitest';
import { autoTls as expressAutoTls } from '../../express/src/index.js';
import { autoTls as koaAutoTls } from '../../koa/src/index.js';

/** The option a configuration error names, or `undefined` when `build` does not throw one. */
function rejectedOption(build: () => unknown): string | undefined {
  try {
    build();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    const { option, message } = error as ConfigurationError;
    expect(message).toContain(option);
    expect(message).not.toContain('\n');
    return option;
  }
  return undefined;
}

const nonsense: Array<[string, CertManagerOptions]> = [
  ['domains[1]', { domains: ['example.com', 'https://example.com/'] }],
  ['domains[0]', { domains: ['exa mple.com'] }],
  ['domains', { domains: 'example.com' as never }],
  ['email', { email: 'not-an-email' }],
  ['retry.intervalsMs', { retry: { intervalsMs: [] } }],
  ['retry.intervalsMs', { retry: { intervalsMs: [1000, -5] } }],
  ['retry.maxDurationMs', { retry: { maxDurationMs: -1 } }],
  ['retry.dnsRecheckMs', { retry: { dnsRecheckMs: 0 } }],
  ['rateLimit.orders', { rateLimit: { orders: 0 } }],
  ['rateLimit.orders', { rateLimit: { orders: 2.5 } }],
  ['rateLimit.windowMs', { rateLimit: { windowMs: Number.NaN } }],
  ['keyType', { keyType: 'rsa-1024' as never }],
  ['onDemand.ask', { onDemand: { ask: 42 as never } }],
  ['onDemand.ask', { onDemand: { ask: 'not a url' } }],
  ['onDemand.maxNewNames', { onDemand: { ask: () => true, maxNewNames: 0 } }],
  ['renewal.windowRatio', { renewal: { windowRatio: 1.5 } }],
  ['renewal.checkIntervalMs', { renewal: { checkIntervalMs: 0 } }],
  ['cacheCapacity', { cacheCapacity: 0 }],
  ['cacheWarmUp', { cacheWarmUp: 'yes' as never }],
  ['issuers', { issuers: [] }],
  ['issuers[0]', { issuers: [{} as never] }],
  ['storage', { storage: 42 as never }],
  ['challenges.http01', { challenges: { http01: 'yes' as never } }],
  [
    'challenges.dnsPropagation.nameservers',
    { challenges: { dnsPropagation: { nameservers: ['ns:99999'] } } },
  ],
  ['challenges.dns01', { challenges: { dns01: { present: async () => {} } as never } }],
  ['challenges.dnsPropagation.nameservers', { challenges: { dnsPropagation: { nameservers: [] } } }],
  ['challenges.dnsPropagation.timeoutMs', { challenges: { dnsPropagation: { timeoutMs: 0 } } }],
  ['defaultName', { defaultName: '*.*.example.com' }],
];

describe('options are checked when the manager is built', () => {
  for (const [option, options] of nonsense) {
    it(`rejects ${option} = ${JSON.stringify(Object.values(options)[0])} with an error naming the option`, () => {
      expect(rejectedOption(() => resolveConfig(options))).toBe(option);
    });
  }

  it('rejects bad options in autoTls() for Express and Koa, before any server starts', () => {
    expect(rejectedOption(() => expressAutoTls({ domains: ['bad domain'] }))).toBe('domains[0]');
    expect(rejectedOption(() => koaAutoTls({ keyType: 'dsa' as never }))).toBe('keyType');
    expect(rejectedOption(() => new CertManager({ retry: { intervalsMs: [] } }))).toBe('retry.intervalsMs');
  });

  it('rejects issuer options that cannot work when the issuer is made', () => {
    expect(rejectedOption(() => acme({ directoryUrl: 'not a url' }))).toBe('directoryUrl');
    expect(rejectedOption(() => acme({ directoryUrl: 'https://ca.test/dir', pollTimeoutMs: -1 }))).toBe(
      'pollTimeoutMs',
    );
    expect(
      rejectedOption(() => acme({ directoryUrl: 'https://ca.test/dir', eab: { kid: 'k' } as never })),
    ).toBe('eab');
  });

  it('resolves defaults once into a frozen configuration with normalised names', () => {
    const config = resolveConfig({ domains: ['Example.COM.', 'example.com', 'Bücher.example'] });
    expect(config.domains).toEqual(['example.com', 'xn--bcher-kva.example']);
    expect(config.retry.intervalsMs[0]).toBe(60_000);
    expect(config.rateLimit).toEqual({ orders: 10, windowMs: 10_000 });
    expect(config.keyType).toBe('ecdsa-p256');
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.retry)).toBe(true);
  });
});
