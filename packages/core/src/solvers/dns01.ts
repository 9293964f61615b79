/** @module DNS-01: a TXT record at `_acme-challenge.<name>` through the user's DNS provider (needed for wildcards). */
import { formatServerAddress, parseServerAddress } from '../dns/exchange.js';
import { CnameChainError, findZone, followCnames, systemResolvers } from '../dns/lookup.js';
import type { ChallengeSolver, PresentedChallenge } from '../issuers/issuer.js';
import type { Logger } from '../log.js';
import { type DnsPropagationOptions, propagationServers, waitForTxt } from './dns-propagation.js';

/**
 * Sets and removes TXT records at the user's DNS host. Before the challenge is answered, autotls waits
 * until the value is served by every authoritative server of the zone (the CA asks right after), unless
 * the provider says `confirmsPropagation`.
 *
 * `fqdn` is `_acme-challenge.<name>`, or the end of its CNAME chain when that name is a CNAME (delegation
 * to a zone the provider can write). Several values can live at one name at once (a wildcard and its
 * base name, two orders): `present` adds one value, `cleanup` removes only that one.
 * @example
 * const provider = { present: (fqdn, value) => myDns.addTxt(fqdn, value), cleanup: (fqdn, value) => myDns.removeTxt(fqdn, value) };
 * new CertManager({ domains: ['*.example.com'], challenges: { dns01: provider } });
 */
export interface DnsProvider {
  present(fqdn: string, value: string): Promise<void>;
  cleanup(fqdn: string, value: string): Promise<void>;
  /** True when `present` resolves only once every authoritative server serves the value: no check is made. */
  readonly confirmsPropagation?: boolean;
}

export interface Dns01SolverOptions {
  logger: Logger;
  /** `false`: answer the challenge as soon as `present` resolves. */
  propagation?: DnsPropagationOptions | false;
}

export class Dns01Solver implements ChallengeSolver {
  /** Where each presented value was written (after CNAMEs), so cleanup deletes that record. */
  private readonly written = new Map<string, string>();

  constructor(
    private readonly provider: DnsProvider,
    private readonly options: Dns01SolverOptions,
  ) {}

  async present(challenge: PresentedChallenge): Promise<void> {
    const record = recordName(challenge.identifier);
    const value = challenge.keyAuthorization;
    const fqdn = await this.target(record);
    await this.provider.present(fqdn, value);
    this.written.set(`${record} ${value}`, fqdn);
    const propagation = this.options.propagation;
    if (propagation === false || this.provider.confirmsPropagation) return;
    try {
      await waitForTxt(fqdn, value, await propagationServers(fqdn, propagation ?? {}), {
        ...propagation,
        logger: this.options.logger,
        ...(challenge.signal ? { signal: challenge.signal } : {}),
      });
    } catch (error) {
      // The CA will never ask for this value now: take it down, as a cleanup after validation would.
      await this.cleanup(challenge).catch(() => {});
      throw error;
    }
  }

  async cleanup(challenge: PresentedChallenge): Promise<void> {
    const record = recordName(challenge.identifier);
    const key = `${record} ${challenge.keyAuthorization}`;
    const fqdn = this.written.get(key) ?? record;
    this.written.delete(key);
    await this.provider.cleanup(fqdn, challenge.keyAuthorization);
  }

  /** `record`, or where its CNAME chain ends (which must be in a zone that exists). */
  private async target(record: string): Promise<string> {
    const given = this.options.propagation ? this.options.propagation.nameservers : undefined;
    const servers = given?.length ? given.map(parseServerAddress) : systemResolvers();
    const { target, chain } = await followCnames(record, servers).catch((error: unknown) => {
      if (error instanceof CnameChainError) throw error;
      const asked = servers.map(formatServerAddress).join(', ');
      throw new Error(
        `DNS-01: could not look up ${record} (CNAME) at ${asked}: ${(error as Error).message}; ` +
          'challenges.dnsPropagation.nameservers names the servers to ask instead',
        { cause: error },
      );
    });
    if (chain.length === 1) return record;
    const zone = await findZone(target, servers).catch(() => undefined);
    if (zone === undefined) {
      throw new CnameChainError(
        `DNS-01: ${chain.join(' → ')} ends at ${target}, which is in no zone the DNS answers for ` +
          '(a dangling CNAME): create that zone, or point the CNAME at a zone your DNS provider can write',
        chain,
      );
    }
    this.options.logger.info({ record, target, chain }, 'DNS-01 record delegated by CNAME');
    return target;
  }
}

/** `*.example.com` and `example.com` both validate at `_acme-challenge.example.com`. */
function recordName(identifier: string): string {
  return `_acme-challenge.${identifier.replace(/^\*\./, '')}`;
}
