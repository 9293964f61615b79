import { describe, expect, it } from 'vitest';
import { InvalidNameError, isInternalName, normalizeName, reverseDnsName } from '../src/names.js';

describe('host names', () => {
  it.each([
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['Bücher.example', 'xn--bcher-kva.example'],
    ['*.Example.com', '*.example.com'],
    ['127.0.0.1', '127.0.0.1'],
    ['[::1]', '::1'],
    ['192.0.2.10', '192.0.2.10'],
    ['2001:DB8:0:0::10', '2001:db8::10'],
    ['[2001:db8::10]', '2001:db8::10'],
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

  it('sends IP addresses other than loopback to ACME (RFC 8738)', () => {
    expect(['192.0.2.10', '2001:db8::10', '10.0.0.1'].some(isInternalName)).toBe(false);
  });

  it('names an IP address the way a CA sends it as SNI for TLS-ALPN-01', () => {
    expect(reverseDnsName('192.0.2.10')).toBe('10.2.0.192.in-addr.arpa');
    expect(reverseDnsName('2001:db8::10')).toBe(
      '0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
    );
    expect(reverseDnsName('::1')).toBe(`1.${'0.'.repeat(31)}ip6.arpa`);
  });
});
