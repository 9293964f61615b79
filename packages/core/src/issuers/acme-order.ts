/** @module One ACME order: newOrder, every authorization solved in parallel, finalize, download the chain. */
import { isIP } from 'node:net';
import acmeClient from 'acme-client';
import { generatePrivateKey, splitPemChain } from '../certificates.js';
import { csrDer } from '../csr.js';
import type { Logger } from '../log.js';
import { type AcmeProblem, AcmeProblemError, isCaUnreachable } from '../problems.js';
import { IP_CHALLENGES } from './acme-options.js';
import { type PollChecks, type PollTiming, pollUntil } from './acme-poll.js';
import type { AcmeTransport } from './acme-transport.js';
import type { CertificateRequest, IssuedCertificate, IssuerContext } from './issuer.js';

/** Everything one order of an attempt works with. */
export interface OrderAttempt {
  transport: AcmeTransport;
  request: CertificateRequest;
  context: IssuerContext;
  logger: Logger;
  /** Enabled challenge types with a solver, in order of preference. */
  challengeTypes: readonly string[];
  /** Challenge types tried by earlier orders of this attempt: the next order prefers another. */
  triedChallenges: Set<string>;
  /** 1-based number of this order within the attempt, and how many the attempt may place. */
  orderNumber: number;
  maxOrders: number;
  /** The profile to put on the order, already checked against the directory. */
  profile?: string;
  /** Whether the order may carry `replaces` (the CA offers ARI and issued the old certificate to us). */
  replaces?: string;
  poll: PollTiming;
}

interface AcmeOrder {
  status: string;
  authorizations: string[];
  finalize: string;
  certificate?: string;
  error?: AcmeProblem;
  /** The profile the CA applied (draft-ietf-acme-profiles echoes it). */
  profile?: string;
}

interface AcmeAuthorization {
  status: string;
  identifier: { type: string; value: string };
  wildcard?: boolean;
  challenges: Array<{
    type: string;
    url: string;
    token: string;
    status: string;
    error?: AcmeProblem;
  }>;
}

export async function placeOrder(attempt: OrderAttempt): Promise<IssuedCertificate> {
  const { transport, request, logger } = attempt;
  const ca = transport.directoryUrl;
  const post = (url: string, payload: unknown) =>
    transport.post(url, payload, { signal: request.signal, guard: request.assertLease });
  const created = await post(await transport.resourceUrl('newOrder'), {
    identifiers: request.names.map((value) => ({ type: isIP(value) ? 'ip' : 'dns', value })),
    ...(attempt.replaces ? { replaces: attempt.replaces } : {}),
    ...(attempt.profile ? { profile: attempt.profile } : {}),
  });
  const orderUrl = created.headers.location ?? '';
  let order = created.body as AcmeOrder;
  // Key and CSR are made in the thread pool while the CA validates, not after.
  const keyAndCsr = createKeyAndCsr(request);
  keyAndCsr.catch(() => {}); // awaited below; a failed order must not leave it unhandled
  await authorizeAll(attempt, order, orderUrl);
  logger.info({ order: orderUrl }, 'validations succeeded; finalizing order');
  const { privateKeyPem, csr } = await keyAndCsr;
  order = (await post(order.finalize, { csr })).body as AcmeOrder;
  order = await poll<AcmeOrder>(attempt, orderUrl, order, { isDone: (o) => o.status === 'valid' });
  if (!order.certificate) throw new Error(`${ca}: order ${orderUrl} is valid but has no certificate URL`);
  const download = await post(order.certificate, null);
  const chain = splitPemChain(String(download.body));
  if (chain.length === 0) throw new Error(`${ca}: the certificate download is not a PEM chain`);
  logger.info(
    { count: 1, first_url: order.certificate, identifiers: request.names },
    'successfully downloaded available certificate chains',
  );
  const profile = order.profile ?? attempt.profile;
  return {
    certificatePem: `${chain.join('\n')}\n`,
    privateKeyPem,
    ca,
    ...(profile ? { profile } : {}),
    ...(transport.accountUrl ? { account: transport.accountUrl } : {}),
  };
}

/** Every authorization at once; on failure the order's authorizations are deactivated (CA willing). */
async function authorizeAll(attempt: OrderAttempt, order: AcmeOrder, orderUrl: string): Promise<void> {
  try {
    await Promise.all(order.authorizations.map((url) => authorize(attempt, url)));
  } catch (error) {
    if (error instanceof AcmeProblemError) {
      attempt.logger.error(
        {
          identifier: attempt.request.names[0],
          problem: error.problem,
          order: orderUrl,
          attempt: attempt.orderNumber,
          max_attempts: attempt.maxOrders,
        },
        'validating authorization',
      );
    }
    if (!isCaUnreachable(error)) await deactivateAuthorizations(attempt.transport, order);
    throw error;
  }
}

async function authorize(attempt: OrderAttempt, url: string): Promise<void> {
  const { transport, context, logger, triedChallenges, request } = attempt;
  const authorization = (
    await transport.post(url, null, { signal: request.signal, guard: request.assertLease })
  ).body as AcmeAuthorization;
  if (authorization.status === 'valid') return;
  const isIpIdentifier = authorization.identifier.type === 'ip';
  const identifier = (authorization.wildcard ? '*.' : '') + authorization.identifier.value;
  const offered = new Set(authorization.challenges.map((challenge) => challenge.type));
  const usable = attempt.challengeTypes.filter(
    (type) => offered.has(type) && (!isIpIdentifier || IP_CHALLENGES.includes(type)),
  );
  const type = usable.find((candidate) => !triedChallenges.has(candidate)) ?? usable[0];
  const challenge = authorization.challenges.find((candidate) => candidate.type === type);
  const solver = type ? context.solvers.get(type) : undefined;
  if (!challenge || !solver) {
    throw new Error(
      `${identifier}: no enabled challenge solver for the types offered (${[...offered].join(', ')})`,
    );
  }
  triedChallenges.add(challenge.type);
  const keyAuthorization = await transport.client.getChallengeKeyAuthorization(challenge as never);
  const presented = {
    type: challenge.type,
    identifier,
    token: challenge.token,
    keyAuthorization,
    ...(isIpIdentifier ? { identifierType: 'ip' as const } : {}),
    ...(request.signal ? { signal: request.signal } : {}),
  };
  logger.info(
    { identifier, challenge_type: challenge.type, ca: transport.directoryUrl },
    'trying to solve challenge',
  );
  await solver.present(presented);
  try {
    await transport.post(challenge.url, {}, { signal: request.signal, guard: request.assertLease });
    const done = await poll<AcmeAuthorization>(attempt, url, undefined, {
      isDone: (a) => a.status === 'valid',
      failedEarly: (a) => pendingChallengeError(a, challenge.url),
    });
    logger.info({ identifier, authz_status: done.status }, 'authorization finalized');
  } finally {
    await solver.cleanup(presented).catch(() => {});
  }
}

function poll<T extends { status: string }>(
  attempt: OrderAttempt,
  url: string,
  initial: T | undefined,
  checks: PollChecks<T>,
): Promise<T> {
  return pollUntil(attempt.transport, url, initial, checks, {
    ...attempt.poll,
    clock: attempt.context.clock,
    signal: attempt.request.signal,
    guard: attempt.request.assertLease,
  });
}

async function deactivateAuthorizations(transport: AcmeTransport, order: AcmeOrder): Promise<void> {
  await Promise.all(
    order.authorizations.map((url) => transport.post(url, { status: 'deactivated' }).catch(() => undefined)),
  );
}

async function createKeyAndCsr(request: CertificateRequest): Promise<{ privateKeyPem: string; csr: string }> {
  const privateKeyPem = await generatePrivateKey(request.keyType);
  if (!request.names.some((name) => isIP(name))) {
    return { privateKeyPem, csr: csrDer(request.names, privateKeyPem).toString('base64url') };
  }
  const [, csrPem] = await acmeClient.crypto.createCsr(
    { commonName: request.names[0], altNames: request.names },
    privateKeyPem,
  );
  const csr = csrPem.toString().replace(/-----[^-]+-----|\s/g, '');
  return { privateKeyPem, csr: Buffer.from(csr, 'base64').toString('base64url') };
}

/**
 * Our challenge came back `pending` with an `error`: the CA tried and failed, and will not move on by itself
 * (Caddy's ACME server leaves it so for ever; RFC 8555 servers that retry say `processing` instead).
 */
function pendingChallengeError(
  authorization: AcmeAuthorization,
  challengeUrl: string,
): AcmeProblem | undefined {
  if (authorization.status !== 'pending') return undefined;
  const challenge = authorization.challenges.find((candidate) => candidate.url === challengeUrl);
  return challenge?.status === 'pending' ? challenge.error : undefined;
}
