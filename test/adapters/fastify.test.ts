import type { AddressInfo } from 'node:net';
import { createManager } from '@autotls/core';
import { autoTls, httpsOptions } from '@autotls/fastify';
import Fastify from 'fastify';
import { runAdapterConformance } from './conformance.js';

runAdapterConformance('fastify', async ({ options, httpPort, httpsPort, host, app }) => {
  // The documented form: one manager for Fastify's https options and the plugin.
  const manager = options.manager ?? createManager(options);
  const server = Fastify({ https: httpsOptions(manager) });
  await server.register(autoTls, { redirect: options.redirect, manager, httpPort, host });
  server.all('*', async (request, reply) => {
    const answer = app({ method: request.method, url: request.url, secure: request.protocol === 'https' });
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  });
  // Hooks run in order: this one runs once the plugin's listener is up and its domains are managed.
  const started = new Promise<void>((resolve) => server.addHook('onListen', async () => resolve()));
  await server.listen({ port: httpsPort, host });
  await started;
  const port = (server.server.address() as AddressInfo).port;
  const close = async () => {
    await server.close();
    if (!options.manager) await manager.close();
  };
  return { httpPort, httpsPort: port, manager: server.autoTls, close };
});
