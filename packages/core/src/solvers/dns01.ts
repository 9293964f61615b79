/** @module DNS-01: a TXT record at `_acme-challenge.<name>` through the user's DNS provider (needed for wildcards). */
import type { ChallengeSolver, PresentedChallenge } from '../issuers/issuer.js';

/**
 * Sets and removes TXT records at the user's DNS host. `present` resolves once the record is served by the
 * zone's authoritative servers (the CA asks them right after).
 * @example
 * const provider = { present: (fqdn, value) => myDns.addTxt(fqdn, value), cleanup: (fqdn, value) => myDns.removeTxt(fqdn, value) };
 * new CertManager({ domains: ['*.example.com'], challenges: { dns01: provider } });
 */
export interface DnsProvider {
  present(fqdn: string, value: string): Promise<void>;
  cleanup(fqdn: string, value: string): Promise<void>;
}

export class Dns01Solver implements ChallengeSolver {
  constructor(private readonly provider: DnsProvider) {}

  present(challenge: PresentedChallenge): Promise<void> {
    return this.provider.present(recordName(challenge.identifier), challenge.keyAuthorization);
  }

  cleanup(challenge: PresentedChallenge): Promise<void> {
    return this.provider.cleanup(recordName(challenge.identifier), challenge.keyAuthorization);
  }
}

/** `*.example.com` and `example.com` both validate at `_acme-challenge.example.com`. */
function recordName(identifier: string): string {
  return `_acme-challenge.${identifier.replace(/^\*\./, '')}`;
}
