import { Keyv as Keyv5 } from 'keyv';
import { Keyv as Keyv6 } from 'keyv6';
import { describe, expect, it } from 'vitest';
import { internal } from '../src/issuers/internal.js';
import type { Issuer } from '../src/issuers/issuer.js';
import { silentLogger } from '../src/log.js';
import { CertManager } from '../src/manager.js';
import { MemoryLocker } from '../src/storage/lock-memory.js';
import type { KeyvLike } from '../src/storage/storage.js';

/** A Map-backed store that can be switched into failing, like a Redis that went away. */
class FlakyStore extends Map<string, unknown> {
  failing = false;
  override get(key: string) {
    if (this.failing)
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
    return super.get(key);
  }
}

/** The local CA under a public-looking name, counting the certificates it issues. */
function countingIssuer() {
  const local = internal();
  const issuer: Issuer & { issued: number } = {
    key: 'counting',
    hasTestCA: false,
    issued: 0,
    async issue(request, context) {
      issuer.issued++;
      return local.issue(request, context);
    },
  };
  return issuer;
}

/** Keyv 5 throws on store errors (`throwOnErrors`); Keyv 6 only emits `error`: both must fail loudly. */
const keyvs = {
  'Keyv 5': (store: FlakyStore): KeyvLike => new Keyv5({ store, namespace: 'autotls' }),
  'Keyv 6': (store: FlakyStore): KeyvLike => new Keyv6({ store, namespace: 'autotls' }),
};

describe.each(Object.entries(keyvs))('a storage that fails (%s)', (_version, openKeyv) => {
  it('never reads as "no certificate": no new certificate is issued while it is down', async () => {
    const store = new FlakyStore();
    const issuer = countingIssuer();
    const first = new CertManager({
      storage: openKeyv(store),
      issuers: [issuer],
      locker: new MemoryLocker(),
      logger: silentLogger,
    });
    await first.manage(['app.example.com']);
    await first.ready(['app.example.com']);
    await first.close();
    expect(issuer.issued).toBe(1);

    store.failing = true;
    let failures = 0;
    const second = new CertManager({
      storage: openKeyv(store),
      issuers: [issuer],
      locker: new MemoryLocker(),
      retry: { intervalsMs: [10] },
      logger: silentLogger,
    });
    second.on('cert_failed', () => {
      if (++failures === 3) store.failing = false;
    });
    await second.manage(['app.example.com']);
    await second.ready(['app.example.com']);
    expect(failures).toBe(3);
    expect(issuer.issued).toBe(1);
    expect(second.getCertificate('app.example.com')?.serialNumber).toBe(
      first.getCertificate('app.example.com')?.serialNumber,
    );
    await second.close();
  });
});
