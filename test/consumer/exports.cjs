// CommonJS: require() of the ESM packages (require(esm), on by default from Node 20.19 and 22.12).
const core = require('@autotls/core');
const express = require('@autotls/express');
const koa = require('@autotls/koa');
const fastify = require('@autotls/fastify');

const found = { core, express, koa, fastify };
console.log(
  JSON.stringify(Object.fromEntries(Object.entries(found).map(([k, m]) => [k, Object.keys(m).sort()]))),
);
