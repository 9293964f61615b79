/** @module DNS questions DNS-01 asks: a name's zone (SOA), its name servers (NS), CNAMEs, TXT values. */
import { randomInt } from 'node:crypto';
import { getServers } from 'node:dns';
import {
  type ExchangeOptions,
  exchange,
  formatServerAddress,
  parseServerAddress,
  type ServerAddress,
} from './exchange.js';
import {
  canonicalName,
  type DnsMessage,
  decodeMessage,
  encodeMessage,
  OPCODE,
  RCODE,
  RR_CLASS,
  RR_TYPE,
  rcodeName,
} from './wire.js';

export interface QueryOptions extends ExchangeOptions {
  /** RD: ask a recursive resolver to find the answer; off when asking an authoritative server directly. */
  recursionDesired?: boolean;
}

/** The error an answer carries (SERVFAIL, REFUSED …), named. NXDOMAIN is an answer, not an error. */
export class DnsQueryError extends Error {
  constructor(
    readonly server: string,
    readonly question: string,
    readonly rcode: number,
  ) {
    super(`DNS server ${server} answered ${rcodeName(rcode)} to ${question}`);
    this.name = 'DnsQueryError';
  }
}

export async function query(
  server: ServerAddress,
  name: string,
  type: number,
  options: QueryOptions = {},
): Promise<DnsMessage> {
  const id = randomInt(0, 0x10000);
  const request = encodeMessage({
    id,
    opcode: OPCODE.QUERY,
    recursionDesired: options.recursionDesired ?? true,
    questions: [{ name, type, class: RR_CLASS.IN }],
  });
  const answer = decodeMessage(await exchange(server, request, options));
  if (answer.rcode !== RCODE.NOERROR && answer.rcode !== RCODE.NXDOMAIN) {
    throw new DnsQueryError(
      formatServerAddress(server),
      `${canonicalName(name)} ${typeName(type)}`,
      answer.rcode,
    );
  }
  return answer;
}

/** Asks each server in turn until one answers: resolvers are alternatives, unlike authoritative servers. */
export async function queryAny(
  servers: readonly ServerAddress[],
  name: string,
  type: number,
  options: QueryOptions = {},
): Promise<DnsMessage> {
  let lastError: unknown = new Error('no DNS servers to ask');
  for (const server of servers) {
    try {
      return await query(server, name, type, options);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

/** The machine's resolvers (/etc/resolv.conf), as node:dns knows them. */
export function systemResolvers(): ServerAddress[] {
  return getServers().map(parseServerAddress);
}

/**
 * The zone `name` is in: the owner of the SOA record that answers (or, for a name without one, that
 * comes in the authority section of the answer). Undefined when no server gives one.
 */
export async function findZone(
  name: string,
  servers: readonly ServerAddress[],
  options: QueryOptions = {},
): Promise<string | undefined> {
  const answer = await queryAny(servers, name, RR_TYPE.SOA, options);
  const soa = [...answer.answers, ...answer.authorities].find((record) => record.type === RR_TYPE.SOA);
  const wanted = canonicalName(name);
  // The root's SOA (what a resolver gives for a TLD that does not exist) is no zone anyone can write to.
  if (!soa || soa.name === '' || !(wanted === soa.name || wanted.endsWith(`.${soa.name}`))) return undefined;
  return soa.name;
}

/** The longest CNAME chain DNS-01 follows; resolvers stop at about this length too (BIND: 11). */
const MAX_CNAME_HOPS = 10;

export class CnameChainError extends Error {
  constructor(
    message: string,
    readonly chain: readonly string[],
  ) {
    super(message);
    this.name = 'CnameChainError';
  }
}

/**
 * Follows CNAMEs from `name` to the name that holds the data (`name` itself when it has none). A loop or a
 * chain longer than resolvers follow throws a {@link CnameChainError} showing the chain.
 */
export async function followCnames(
  name: string,
  servers: readonly ServerAddress[],
  options: QueryOptions = {},
): Promise<{ target: string; chain: string[] }> {
  const chain = [canonicalName(name)];
  for (;;) {
    const current = chain.at(-1) as string;
    const answer = await queryAny(servers, current, RR_TYPE.CNAME, options).catch((error: unknown) => {
      // A target nobody answers for (REFUSED, SERVFAIL) ends the chain; the caller finds it has no zone.
      if (chain.length > 1 && error instanceof DnsQueryError) return undefined;
      throw error;
    });
    if (!answer) return { target: current, chain };
    const cname = answer.answers.find((record) => record.type === RR_TYPE.CNAME && record.name === current);
    if (!cname?.target) return { target: current, chain };
    if (chain.includes(cname.target)) {
      throw new CnameChainError(`CNAME loop: ${[...chain, cname.target].join(' → ')}`, [
        ...chain,
        cname.target,
      ]);
    }
    chain.push(cname.target);
    if (chain.length > MAX_CNAME_HOPS + 1) {
      throw new CnameChainError(`CNAME chain longer than ${MAX_CNAME_HOPS}: ${chain.join(' → ')}`, chain);
    }
  }
}

/**
 * The zone's authoritative servers: one address (port 53) per NS name, IPv4 when it has one. One per name:
 * a server is one server however many addresses it has, and a machine without IPv6 must not wait forever
 * on an address it cannot reach.
 */
export async function authoritativeServers(
  zone: string,
  resolvers: readonly ServerAddress[],
  options: QueryOptions = {},
): Promise<ServerAddress[]> {
  const answer = await queryAny(resolvers, zone, RR_TYPE.NS, options);
  const names = answer.answers.flatMap((record) =>
    record.type === RR_TYPE.NS && record.target ? [record.target] : [],
  );
  const addresses = await Promise.all(
    names.map(async (host) => {
      for (const type of [RR_TYPE.A, RR_TYPE.AAAA]) {
        const found = await queryAny(resolvers, host, type, options).catch(() => undefined);
        const address = found?.answers.flatMap((record) => addressOf(record.type, record.data))[0];
        if (address) return [address];
      }
      return [];
    }),
  );
  return [...new Set(addresses.flat())].map((host) => ({ host, port: 53 }));
}

function addressOf(type: number, data: Buffer): string[] {
  if (type === RR_TYPE.A && data.length === 4) return [[...data].join('.')];
  if (type === RR_TYPE.AAAA && data.length === 16) {
    const groups = Array.from({ length: 8 }, (_, index) => data.readUInt16BE(index * 2).toString(16));
    return [groups.join(':')];
  }
  return [];
}

/** The TXT values at `name` on one server (each value: its character-strings joined, RFC 8555 §8.4). */
export async function txtValues(
  server: ServerAddress,
  name: string,
  options: QueryOptions = {},
): Promise<string[]> {
  const answer = await query(server, name, RR_TYPE.TXT, options);
  const wanted = canonicalName(name);
  return answer.answers.flatMap((record) =>
    record.type === RR_TYPE.TXT && record.name === wanted ? [(record.texts ?? []).join('')] : [],
  );
}

function typeName(type: number): string {
  return Object.entries(RR_TYPE).find(([, value]) => value === type)?.[0] ?? `TYPE${type}`;
}
