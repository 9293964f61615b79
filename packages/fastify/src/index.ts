/** @module @autotls/fastify: automatic HTTPS for Fastify 5 — `Fastify({ https: httpsOptions(manager) })` + this plugin. */
import http from 'node:http';
import type https from 'node:https';
import type net from 'node:net';
import tls from 'node:tls';
import {
  AdapterCore,
  type AdapterOptions,
  type CertManager,
  closeServer,
  httpChallengeRequestOf,
  listenServer,
  trackConnections,
} from '@autotls/core';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

/** `manager` (the one given to `httpsOptions()`, which the plugin then leaves open) and `redirect` as in every adapter. */
export interface AutoTlsPluginOptions extends AdapterOptions {
  /** Start a plain-HTTP listener on this port (e.g. 80) with Fastify: HTTP-01 answers and redirects. */
  httpPort?: number;
  /** Address for that listener (default: all interfaces). */
  host?: string;
  /** Port in redirect URLs (default: this instance's own port when it serves HTTPS, else 443). */
  httpsPort?: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The certificate manager behind `@autotls/fastify`. */
    autoTls: CertManager;
  }
}

const CHALLENGE_ROUTE = '/.well-known/acme-challenge/:token';

/**
 * Options for `Fastify({ https })`: certificates are picked per handshake from the manager's cache. Pass
 * the same manager to the plugin.
 * @example
 * const manager = createManager({ domains: ['example.com'], email: 'me@example.com' });
 * const app = Fastify({ https: httpsOptions(manager) });
 * await app.register(autoTls, { manager, httpPort: 80 });
 */
export function httpsOptions(manager: CertManager): https.ServerOptions {
  return manager.httpsOptions();
}

const plugin: FastifyPluginAsync<AutoTlsPluginOptions> = async (fastify, options) => {
  const secure = fastify.server instanceof tls.Server;
  if (secure && !options.manager) {
    throw new Error(
      '@autotls/fastify: this Fastify serves HTTPS, so its certificates come from the manager given to ' +
        'httpsOptions(manager): register the plugin with that manager, register(autoTls, { manager })',
    );
  }
  const core = new AdapterCore(options);
  core.httpsPort = options.httpsPort;
  if (!fastify.hasDecorator('autoTls')) fastify.decorate('autoTls', core.manager);
  answerChallengesAndRedirect(fastify, core, options.redirect !== false);
  if (fastify.server instanceof tls.Server) serveTls(fastify, fastify.server, core.manager);
  const plain = listenPlainHttp(fastify, options);

  fastify.addHook('onListen', async () => {
    if (core.httpsPort === undefined && fastify.server instanceof tls.Server) {
      core.httpsPort = (fastify.server.address() as net.AddressInfo).port;
    }
    await core.manageDomains();
  });

  fastify.addHook('onClose', async () => {
    const server = plain();
    if (server) await closeServer(server);
    if (core.ownsManager) await core.manager.close();
  });
};

/** The challenge route, and (unless `redirect` is off) core's redirect for every other plain-HTTP request. */
function answerChallengesAndRedirect(fastify: FastifyInstance, core: AdapterCore, redirect: boolean): void {
  /** Sends core's answer (challenge, redirect) if it has one; `undefined` means the app handles it. */
  const respond = async (request: FastifyRequest, reply: FastifyReply) => {
    const answer = await core.answer({
      ...httpChallengeRequestOf(request.raw),
      secure: request.protocol === 'https',
    });
    return answer && reply.code(answer.status).headers(answer.headers).send(answer.body);
  };
  fastify.route({
    method: ['GET', 'HEAD'],
    url: CHALLENGE_ROUTE,
    handler: async (request, reply) => (await respond(request, reply)) ?? reply.callNotFound(),
  });
  if (!redirect) return;
  fastify.addHook('onRequest', async (request, reply) => {
    if (request.protocol === 'http' && request.routeOptions.url !== CHALLENGE_ROUTE)
      return respond(request, reply);
  });
}

function serveTls(fastify: FastifyInstance, server: tls.Server, manager: CertManager): void {
  manager.attach(server);
  // Fastify's close() would wait up to two minutes for a TLS handshake that never finishes: drop those.
  const handshaking = trackConnections(server, { untilSecure: true });
  fastify.addHook('preClose', async () => {
    for (const socket of handshaking.values()) socket.destroy();
  });
}

/** The port-80 listener, opened when Fastify is ready; returns a getter for it (for `onClose`). */
function listenPlainHttp(
  fastify: FastifyInstance,
  options: AutoTlsPluginOptions,
): () => http.Server | undefined {
  let plain: http.Server | undefined;
  // Before Fastify listens, so a busy or privileged port fails `listen()` like in every adapter.
  fastify.addHook('onReady', async () => {
    if (options.httpPort === undefined) return;
    // The whole app sits behind the plain listener too, so its hooks decide: challenge, redirect or app.
    const server = http.createServer((req, res) => fastify.routing(req, res));
    await listenServer(server, options.httpPort, options.host);
    plain = server;
    // If Fastify's own listen then fails, nothing of ours may stay open.
    fastify.server.once('error', () => void closeServer(server));
  });
  return () => plain;
}

/**
 * Fastify plugin: HTTP-01 challenge route, plain-HTTP → HTTPS redirect, optional port-80 listener, and
 * `fastify.autoTls` (the manager). Manages the domains once Fastify listens; closes in `onClose`.
 * @example
 * const manager = createManager({ domains: ['example.com'], email: 'me@example.com' });
 * const app = Fastify({ https: httpsOptions(manager) });
 * await app.register(autoTls, { manager, httpPort: 80 });
 * await app.listen({ port: 443, host: '::' });
 */
export const autoTls = fp(plugin, { fastify: '5.x', name: '@autotls/fastify' });
export default autoTls;
