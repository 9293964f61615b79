/** @module One storage suite, many engines: what autotls needs from any Keyv store it is given. */
import { setTimeout as delay } from 'node:timers/promises';
import type { Keyv } from 'keyv';
import { afterEach, describe, expect, it } from 'vitest';

export interface KeyvUnderTest {
  keyv: Keyv;
  cleanup(): Promise<void>;
}

/**
 * Registers the suite. `makeKeyv(namespace)` opens a Keyv on the engine under test (throwing on store
 * errors, as autotls runs it); Keyvs opened by one suite share the engine, so namespaces can be compared.
 */
export function runStorageConformance(
  name: string,
  makeKeyv: (namespace: string) => Promise<KeyvUnderTest>,
): void {
  describe(`storage conformance: ${name}`, () => {
    const opened: KeyvUnderTest[] = [];
    let namespaces = 0;
    const open = async (namespace = `test${++namespaces}`) => {
      const underTest = await makeKeyv(namespace);
      opened.push(underTest);
      return underTest.keyv;
    };

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((underTest) => underTest.cleanup()));
    });

    it('reads back strings, objects and buffers as they were written', async () => {
      const keyv = await open();
      const record = {
        certificate: '-----BEGIN CERTIFICATE-----\n',
        names: ['a.example', '*.b.example'],
        n: 3,
      };
      await keyv.set('certificates/ca/a.example', record);
      await keyv.set('challenges/token', 'key-authorization');
      await keyv.set('leading-colon', ':looks:prefixed');
      await keyv.set('der', Buffer.from([0, 1, 2, 255]));
      expect(await keyv.get('certificates/ca/a.example')).toEqual(record);
      expect(await keyv.get('challenges/token')).toBe('key-authorization');
      expect(await keyv.get('leading-colon')).toBe(':looks:prefixed');
      expect(await keyv.get('der')).toEqual(Buffer.from([0, 1, 2, 255]));
    });

    it('answers undefined for a key that was never written', async () => {
      const keyv = await open();
      expect(await keyv.get('certificates/ca/missing.example')).toBeUndefined();
      expect(await keyv.has('certificates/ca/missing.example')).toBe(false);
    });

    it('forgets a deleted key, and says whether there was one', async () => {
      const keyv = await open();
      await keyv.set('accounts/ca/admin@example.com', { kid: 'k1' });
      expect(await keyv.has('accounts/ca/admin@example.com')).toBe(true);
      expect(await keyv.delete('accounts/ca/admin@example.com')).toBe(true);
      expect(await keyv.get('accounts/ca/admin@example.com')).toBeUndefined();
      expect(await keyv.delete('accounts/ca/admin@example.com')).toBe(false);
    });

    it('keeps namespaces apart, and clears only its own', async () => {
      const first = await open();
      const second = await open();
      await first.set('certificates/ca/a.example', 'first');
      await second.set('certificates/ca/a.example', 'second');
      expect(await first.get('certificates/ca/a.example')).toBe('first');
      expect(await second.get('certificates/ca/a.example')).toBe('second');
      await first.clear();
      expect(await first.get('certificates/ca/a.example')).toBeUndefined();
      expect(await second.get('certificates/ca/a.example')).toBe('second');
    });

    it('drops an entry once its TTL has passed', async () => {
      const keyv = await open();
      await keyv.set('challenges/short-lived', 'key-authorization', 100);
      expect(await keyv.get('challenges/short-lived')).toBe('key-authorization');
      await delay(250);
      expect(await keyv.get('challenges/short-lived')).toBeUndefined();
      expect(await keyv.has('challenges/short-lived')).toBe(false);
    });

    it('stores large values whole', async () => {
      const keyv = await open();
      const large = 'x'.repeat(4 * 1024 * 1024);
      const bytes = Buffer.alloc(1024 * 1024, 0xab);
      await keyv.set('large/string', large);
      await keyv.set('large/buffer', bytes);
      expect((await keyv.get<string>('large/string')) === large).toBe(true);
      // Compared with Buffer#equals: a deep equality over a million elements takes seconds.
      expect(bytes.equals((await keyv.get<Buffer>('large/buffer'))!)).toBe(true);
    });

    it('leaves one complete value after concurrent writes to one key', async () => {
      const keyv = await open();
      const values = Array.from({ length: 16 }, (_, index) => String(index % 10).repeat(256 * 1024));
      await Promise.all(values.map((value) => keyv.set('certificates/ca/contended.example', value)));
      expect(values).toContain(await keyv.get('certificates/ca/contended.example'));
    });

    it('lists the keys of its namespace through keyv.iterator', async () => {
      const keyv = await open();
      const other = await open();
      await keyv.set('certificates/ca/a.example', 1);
      await keyv.set('accounts/ca/admin@example.com', 2);
      await other.set('certificates/ca/elsewhere.example', 3);
      expect(keyv.iterator).toBeTypeOf('function');
      const entries: Array<[string, unknown]> = [];
      for await (const entry of keyv.iterator!(undefined)) entries.push(entry as [string, unknown]);
      expect(entries.sort()).toEqual([
        ['accounts/ca/admin@example.com', 2],
        ['certificates/ca/a.example', 1],
      ]);
    });
  });
}
