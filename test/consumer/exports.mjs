// ESM: every package imports from its tarball install and has its documented entry points.
import * as core from '@autotls/core';
import * as express from '@autotls/express';
import * as fastify from '@autotls/fastify';
import * as koa from '@autotls/koa';

const found = { core, express, koa, fastify };
console.log(
  JSON.stringify(Object.fromEntries(Object.entries(found).map(([k, m]) => [k, Object.keys(m).sort()]))),
);
