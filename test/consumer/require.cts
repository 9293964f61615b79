// A CommonJS TypeScript file requiring the ESM packages (TypeScript ≥ 5.8 models Node's require(esm)).
import core = require('@autotls/core');
import expressTls = require('@autotls/express');

export const manager: core.CertManager = core.createManager({ domains: ['example.com'] });
export const middleware = expressTls.autoTls({ manager });
