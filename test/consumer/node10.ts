// moduleResolution node10 (older TypeScript setups) reads the top-level `types` of each package.
import { type CertManager, createManager } from '@autotls/core';
import { autoTls } from '@autotls/express';
import { httpsOptions } from '@autotls/fastify';
import { autoTls as koaTls } from '@autotls/koa';

export const manager: CertManager = createManager({ domains: ['example.com'] });
export const forms = [autoTls({ manager }), koaTls({ manager }), httpsOptions(manager)];
