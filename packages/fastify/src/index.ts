/** @module @autotls/fastify: automatic HTTPS for Fastify 5 — `fastify.register(autoTls, { domains, email })`. */
import http from 'node:http';
import type https from 'node:https';
import type net from 'node:net';
import tls from 'node:tls';
import type { AdapterOptions, CertManager, CertManagerOptions } from '@autotls/core';
import {
  closeServer,
  createManager,
  httpChallengeRequestOf,
  listenServer,
  trackConnections,
} from '@autotls/core';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

/** `manager` (an existing one, which the plugin then leaves open) and `redirect` as in every adapter. */
export interface AutoTlsPluginOptions extends AdapterOptions {
  /** Start a plain-HTTP listener on this port (e.g. 80) once Fastify listens: HTTP-01 answers and redirects. */
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

/** Managers made from an options object, so `httpsOptions(options)` and `register(autoTls, options)` share one. */
const managersByOptions = new WeakMap<CertManagerOptions, CertManager>();

function managerFor(options: AutoTlsPluginOptions): CertManager {
  if (options.manager) return options.manager;
  if (!managersByOptions.has(options)) managersByOptions.set(options, createManager(options));
  return managersByOptions.get(options) as CertManager;
}

function isManager(value: CertManager | AutoTlsPluginOptions): value is CertManager {
  return typeof (value as CertManager).handleHttpRequest === 'function';
}

/**
 * Options for `Fastify({ https })`: certificates are picked per handshake from the manager's cache. Given
 * an options object instead of a manager, it makes the manager that `register(autoTls, sameObject)` uses.
 * @example
 * const manager = createManager({ domains: ['example.com'], email: 'me@example.com' });
 * const app = Fastify({ https: httpsOptions(manager) });
 * await app.register(autoTls, { manager, httpPort: 80 });
 */
export function httpsOptions(managerOrOptions: CertManager | AutoTlsPluginOptions): https.ServerOptions {
  const manager = isManager(managerOrOptions) ? managerOrOptions : managerFor(managerOrOptions);
  return manager.httpsOptions();
}

const plugin: FastifyPluginAsync<AutoTlsPluginOptions> = async (fastify, options) => {
  const manager = managerFor(options);
  if (!fastify.hasDecorator('autoTls')) fastify.decorate('autoTls', manager);
  let httpsPort = options.httpsPort;
  let plain: http.Server | undefined;

  /** Sends core's answer (challenge, redirect) if it has one; `undefined` means the app handles it. */
  const respond = async (request: FastifyRequest, reply: FastifyReply) => {
    const secure = request.protocol === 'https';
    const challenge = { ...httpChallengeRequestOf(request.raw), secure };
    const answer = await manager.handleHttpRequest(challenge, { redirect: options.redirect, httpsPort });
    return answer && reply.code(answer.status).headers(answer.headers).send(answer.body);
  };

  fastify.route({
    method: ['GET', 'HEAD'],
    url: CHALLENGE_ROUTE,
    handler: async (request, reply) => (await respond(request, reply)) ?? reply.callNotFound(),
  });
  if (options.redirect !== false) {
    fastify.addHook('onRequest', async (request, reply) => {
      if (request.protocol === 'http' && request.routeOptions.url !== CHALLENGE_ROUTE)
        return respond(request, reply);
    });
  }

  if (fastify.server instanceof tls.Server) {
    manager.serveTlsAlpnChallenges(fastify.server);
    // Fastify's close() would wait up to two minutes for a TLS handshake that never finishes: drop those.
    const handshaking = trackConnections(fastify.server, { untilSecure: true });
    fastify.addHook('preClose', async () => {
      for (const socket of handshaking.values()) socket.destroy();
    });
  }

  fastify.addHook('onListen', async () => {
    if (httpsPort === undefined && fastify.server instanceof tls.Server) {
      httpsPort = (fastify.server.address() as net.AddressInfo).port;
    }
    if (options.httpPort !== undefined) {
      // The whole app sits behind the plain listener too, so its hooks decide: challenge, redirect or app.
      plain = http.createServer((req, res) => fastify.routing(req, res));
      await listenServer(plain, options.httpPort, options.host).catch((err: unknown) => {
        fastify.log.error({ err, port: options.httpPort }, 'autotls: plain-HTTP listener failed to start');
      });
    }
    await manager.manage(options.domains ?? []);
  });

  fastify.addHook('onClose', async () => {
    if (plain) await closeServer(plain);
    if (!options.manager) await manager.close();
  });
};

/**
 * Fastify plugin: HTTP-01 challenge route, plain-HTTP → HTTPS redirect, optional port-80 listener, and
 * `fastify.autoTls` (the manager). Manages `options.domains` once Fastify listens; closes in `onClose`.
 * @example
 * const options = { domains: ['example.com'], email: 'me@example.com', httpPort: 80 };
 * const app = Fastify({ https: httpsOptions(options) });
 * await app.register(autoTls, options);
 * await app.listen({ port: 443, host: '::' });
 */
export const autoTls = fp(plugin, { fastify: '5.x', name: '@autotls/fastify' });
export default autoTls;
