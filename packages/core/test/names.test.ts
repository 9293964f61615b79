import { describe, expect, it } from 'vitest';
import { InvalidNameError, isInternalName, normalizeName } from '../src/names.js';

describe('host names', () => {
  it.each([
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['Bücher.example', 'xn--bcher-kva.example'],
    ['*.Example.com', '*.example.com'],
    ['127.0.0.1', '127.0.0.1'],
    ['[::1]', '::1'],
    ['under_score.example', 'under_score.example'],
  ])('normalises %s to %s', (input, expected) => {
    expect(normalizeName(input)).toBe(expected);
  });

  it.each([
    ['', /empty/],
    ['example.com:443', /no scheme, port or path/],
    ['https://example.com', /no scheme, port or path/],
    ['example.com/path', /no scheme, port or path/],
    ['a..example.com', /empty label/],
    ['.example.com', /empty label/],
    ['-bad.example.com', /invalid characters/],
    [`${'x'.repeat(64)}.example`, /longer than 63/],
    [`${'a.'.repeat(127)}com`, /longer than 253/],
    ['10.0.0.1', /IP addresses are only supported for loopback/],
    ['a.*.example.com', /wildcard must be the whole leftmost label/],
    ['exa mple.com', /no scheme, port or path/],
  ])('rejects %j with a clear error', (input, message) => {
    expect(() => normalizeName(input)).toThrow(InvalidNameError);
    expect(() => normalizeName(input)).toThrow(message);
  });

  it('sends localhost-type names to the local CA and public names to ACME', () => {
    expect(
      ['localhost', 'app.localhost', 'printer.local', 'db.internal', '127.0.0.1', '::1'].every(
        isInternalName,
      ),
    ).toBe(true);
    expect(['example.com', 'localhost.example.com', 'local.example.com'].some(isInternalName)).toBe(false);
  });
});
