/**
 * @module test/support/profile-stand-in — ACME profiles (draft-ietf-acme-profiles) in front of a Pebble that
 * has none (Pebble 2.4 lists no `meta.profiles` and ignores an order's `profile`): an HTTPS proxy that lists
 * profiles in the directory, records each newOrder's `profile`, echoes it on the order, answers
 * `invalidProfile` at newOrder for an unlisted one, and can refuse a profile at finalize.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Pebble } from './pebble.js';
import { forwardableHeaders, readBody } from './reverse-proxy.js';
import { sendWhole, standInFront } from './stand-in.js';

/** Pebble's routes for newOrder, an order, and its finalize URL. */
const NEW_ORDER_PATH = '/order-plz';
const ORDER_PREFIX = '/my-order/';
const FINALIZE_PREFIX = '/finalize-order/';
const NONCE_PATH = '/nonce-plz';

/** What Let's Encrypt lists (descriptions shortened). */
export const LETS_ENCRYPT_PROFILES: Readonly<Record<string, string>> = {
  classic: 'The same profile you know and love (90 days)',
  tlsserver: 'Certificates for TLS servers only (45 days)',
  shortlived: 'Certificates valid for 160 hours, DNS and IP identifiers',
};

export interface OrderSeen {
  identifiers: Array<{ type: string; value: string }>;
  profile?: string;
  replaces?: string;
  /** Where the stand-in refused it instead of Pebble answering. */
  refusedAt?: 'newOrder' | 'finalize';
}

export interface ProfileStandIn {
  readonly origin: string;
  readonly directoryUrl: string;
  /** Trust anchor for the stand-in's HTTPS (the harness CA). */
  readonly caPem: string;
  /** Every newOrder request, in order. */
  readonly orders: OrderSeen[];
  /** The profiles the directory lists from now on; default {@link LETS_ENCRYPT_PROFILES}. */
  listProfiles(profiles: Record<string, string>): void;
  /** From now on, finalizing an order with this profile answers `invalidProfile` (the CA stopped issuing it). */
  refuseAtFinalize(profile: string | undefined): void;
  stop(): Promise<void>;
}

export async function startProfileStandIn(pebble: Pebble): Promise<ProfileStandIn> {
  const front = await standInFront(pebble);
  const { origin, upstream } = front;
  const orders: OrderSeen[] = [];
  /** Pebble's order id → the profile its newOrder asked for. */
  const profileOfOrder = new Map<string, string | undefined>();
  let profiles: Record<string, string> = { ...LETS_ENCRYPT_PROFILES };
  let refusedAtFinalize: string | undefined;

  const problem = async (req: IncomingMessage, res: ServerResponse, status: number, detail: string) => {
    const nonce = (await upstream('HEAD', NONCE_PATH, { host: req.headers.host })).headers['replay-nonce'];
    const body = { type: 'urn:ietf:params:acme:error:invalidProfile', detail, status };
    sendWhole(
      res,
      status,
      { 'content-type': 'application/problem+json', ...(nonce ? { 'replay-nonce': nonce } : {}) },
      JSON.stringify(body),
    );
  };

  const payloadOf = (body: Buffer) => {
    const jws = JSON.parse(body.toString('utf8')) as { payload: string };
    return jws.payload
      ? (JSON.parse(Buffer.from(jws.payload, 'base64url').toString('utf8')) as unknown)
      : null;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const body = await readBody(req);
    let requestedProfile: string | undefined;
    if (method === 'POST' && path === NEW_ORDER_PATH) {
      const order = payloadOf(body) as Omit<OrderSeen, 'refusedAt'>;
      const seen: OrderSeen = {
        identifiers: order.identifiers,
        ...(order.profile ? { profile: order.profile } : {}),
        ...(order.replaces ? { replaces: order.replaces } : {}),
      };
      orders.push(seen);
      requestedProfile = order.profile;
      if (order.profile !== undefined && !(order.profile in profiles)) {
        seen.refusedAt = 'newOrder';
        return problem(req, res, 400, `profile "${order.profile}" is not offered (profile stand-in)`);
      }
    }
    if (method === 'POST' && path.startsWith(FINALIZE_PREFIX)) {
      const profile = profileOfOrder.get(path.slice(FINALIZE_PREFIX.length));
      if (refusedAtFinalize !== undefined && profile === refusedAtFinalize) {
        const seen = orders.findLast((order) => order.profile === profile);
        if (seen) seen.refusedAt = 'finalize';
        return problem(req, res, 403, `profile "${profile}" is no longer issued (profile stand-in)`);
      }
    }
    const response = await upstream(
      method,
      path,
      forwardableHeaders(req.headers, ['content-length']),
      body.length > 0 ? body : undefined,
    );
    const out = forwardableHeaders(response.headers, ['content-length']);
    if (method === 'HEAD') {
      res.writeHead(response.status, out);
      return res.end();
    }
    let payload = response.body;
    if (method === 'GET' && path === new URL(pebble.directoryUrl).pathname) {
      const directory = JSON.parse(payload.toString('utf8')) as { meta?: Record<string, unknown> };
      payload = Buffer.from(JSON.stringify({ ...directory, meta: { ...directory.meta, profiles } }));
    }
    const location = String(response.headers.location ?? '');
    if (path === NEW_ORDER_PATH && location.includes(ORDER_PREFIX)) {
      profileOfOrder.set(
        location.slice(location.indexOf(ORDER_PREFIX) + ORDER_PREFIX.length),
        requestedProfile,
      );
    }
    const orderId = path.startsWith(ORDER_PREFIX)
      ? path.slice(ORDER_PREFIX.length)
      : path.startsWith(FINALIZE_PREFIX)
        ? path.slice(FINALIZE_PREFIX.length)
        : location.slice(location.indexOf(ORDER_PREFIX) + ORDER_PREFIX.length);
    const echoed = profileOfOrder.get(orderId);
    if (echoed && response.status < 300 && /json/.test(String(response.headers['content-type']))) {
      // The draft: the server echoes the order's profile.
      payload = Buffer.from(JSON.stringify({ ...JSON.parse(payload.toString('utf8')), profile: echoed }));
    }
    sendWhole(res, response.status, out, payload);
  };

  await front.serve(handle);

  return {
    origin,
    directoryUrl: front.directoryUrl,
    caPem: front.caPem,
    orders,
    listProfiles(next) {
      profiles = { ...next };
    },
    refuseAtFinalize(profile) {
      refusedAtFinalize = profile;
    },
    stop: () => front.stop(),
  };
}
