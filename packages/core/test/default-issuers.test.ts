import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../src/errors.js';
import type { AcmeIssuer } from '../src/issuers/acme.js';
import { defaultIssuers } from '../src/issuers/default-issuers.js';

const directoryOf = (issuer: unknown) => (issuer as AcmeIssuer).options.directoryUrl;

describe('the default issuers', () => {
  it("are Let's Encrypt, then ZeroSSL when an email is given", () => {
    expect(defaultIssuers(undefined, {}).map(directoryOf)).toEqual([
      'https://acme-v02.api.letsencrypt.org/directory',
    ]);
    expect(defaultIssuers('me@example.com', {}).map(directoryOf)).toEqual([
      'https://acme-v02.api.letsencrypt.org/directory',
      'https://acme.zerossl.com/v2/DV90',
    ]);
  });

  it('are the one CA of AUTOTLS_ACME_CA, trusted with AUTOTLS_ACME_CA_ROOT', () => {
    const root = path.join(os.tmpdir(), `autotls-root-${process.pid}.pem`);
    writeFileSync(root, '-----BEGIN CERTIFICATE-----\n');
    const [issuer, ...others] = defaultIssuers('me@example.com', {
      AUTOTLS_ACME_CA: 'https://ca.internal/acme/directory',
      AUTOTLS_ACME_CA_ROOT: root,
    }) as AcmeIssuer[];
    expect(others).toEqual([]);
    expect(issuer?.options).toMatchObject({
      directoryUrl: 'https://ca.internal/acme/directory',
      ca: '-----BEGIN CERTIFICATE-----\n',
    });
  });

  it('reject a variable that is not a URL or a root that cannot be read, naming it', () => {
    expect(() => defaultIssuers(undefined, { AUTOTLS_ACME_CA: 'pebble' })).toThrow(ConfigurationError);
    expect(() => defaultIssuers(undefined, { AUTOTLS_ACME_CA: 'pebble' })).toThrow(
      /AUTOTLS_ACME_CA .*pebble/,
    );
    expect(() =>
      defaultIssuers(undefined, {
        AUTOTLS_ACME_CA: 'https://ca.internal/dir',
        AUTOTLS_ACME_CA_ROOT: '/nonexistent.pem',
      }),
    ).toThrow(/AUTOTLS_ACME_CA_ROOT.*nonexistent/);
  });
});
