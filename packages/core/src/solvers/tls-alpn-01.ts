/** @module TLS-ALPN-01: answers the CA's `acme-tls/1` handshake with the challenge certificate (RFC 8737). */
import tls from 'node:tls';
import acmeClient from 'acme-client';
import { generatePrivateKeyPem } from '../certificates.js';
import type { ChallengeSolver, PresentedChallenge } from '../issuers/issuer.js';
import { errorFields, type Logger } from '../log.js';
import { reverseDnsName } from '../names.js';
import { storageKeys } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';
import { alpnChallengeCertificatePem } from './alpn-certificate.js';
import { peekClientHello } from './client-hello.js';

export const ACME_TLS_PROTOCOL = 'acme-tls/1';

interface ChallengeCertificate {
  certificatePem: string;
  privateKeyPem: string;
}

/** Challenges live minutes; a crashed instance's entries expire by themselves. */
const CHALLENGE_TTL_MS = 60 * 60_000;

export class TlsAlpn01Solver implements ChallengeSolver {
  private readonly active = new Map<string, tls.SecureContext>();
  private readonly attached = new WeakSet<tls.Server>();

  /**
   * @param peekAlways Peek at every connection, also while this process has no challenge: needed when other
   *   instances share the storage and the port (a cluster), since the CA may reach any of them. A single
   *   instance peeks only while its own challenges are out, sparing every other handshake the peek (about
   *   80 µs of a ~850 µs handshake in the bench).
   */
  constructor(
    private readonly storage: Storage,
    private readonly logger: Logger,
    private readonly peekAlways: boolean,
  ) {}

  /**
   * Makes the challenge certificate: one SAN, the name — or for an IP address (RFC 8738 §6) one iPAddress
   * SAN, served when the CA's SNI is the address's reverse name (`10.2.0.192.in-addr.arpa`).
   */
  async present(challenge: PresentedChallenge): Promise<void> {
    const record = await challengeCertificate(challenge);
    const servername = sniNameOf(challenge);
    this.active.set(servername, contextOf(record));
    // Stored before the CA validates, so an instance behind the same balancer can answer too.
    await this.storage.set(storageKeys.tlsAlpnChallenge(servername), record, CHALLENGE_TTL_MS);
  }

  async cleanup(challenge: PresentedChallenge): Promise<void> {
    const servername = sniNameOf(challenge);
    this.active.delete(servername);
    await this.storage.delete(storageKeys.tlsAlpnChallenge(servername));
  }

  /**
   * Takes over a TLS server's incoming connections: a ClientHello that offers exactly `acme-tls/1` for a
   * name being validated gets the challenge certificate; every other connection goes on to the server.
   * Node picks certificates in SNICallback, which cannot see ALPN — hence the peek at the ClientHello.
   */
  attach(server: tls.Server): void {
    if (this.attached.has(server)) return;
    this.attached.add(server);
    const serverListeners = server.listeners('connection') as Array<
      (socket: import('node:net').Socket) => void
    >;
    server.removeAllListeners('connection');
    server.on('connection', (socket: import('node:net').Socket) => {
      if (!this.peekAlways && this.active.size === 0) {
        for (const listener of serverListeners) listener.call(server, socket);
        return;
      }
      this.route(socket).then(
        (handled) => {
          if (!handled) for (const listener of serverListeners) listener.call(server, socket);
        },
        () => socket.destroy(),
      );
    });
  }

  private async route(socket: import('node:net').Socket): Promise<boolean> {
    const hello = await peekClientHello(socket);
    if (
      hello?.alpnProtocols.length !== 1 ||
      hello.alpnProtocols[0] !== ACME_TLS_PROTOCOL ||
      !hello.servername
    ) {
      return false;
    }
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const context = await this.contextFor(hello.servername);
    if (!context) {
      this.logger.warn(
        { identifier: hello.servername, remote },
        'acme-tls/1 handshake for a name with no challenge',
      );
      socket.destroy();
      return true;
    }
    const challengeSocket = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext: context.secureContext,
      ALPNProtocols: [ACME_TLS_PROTOCOL],
    });
    challengeSocket.on('secure', () => challengeSocket.end());
    challengeSocket.on('error', () => challengeSocket.destroy());
    this.logger.info(
      { identifier: hello.servername, challenge: 'tls-alpn-01', remote, distributed: context.distributed },
      'served key authentication certificate',
    );
    return true;
  }

  private async contextFor(
    name: string,
  ): Promise<{ secureContext: tls.SecureContext; distributed: boolean } | undefined> {
    const local = this.active.get(name);
    if (local) return { secureContext: local, distributed: false };
    try {
      const record = await this.storage.get<ChallengeCertificate>(storageKeys.tlsAlpnChallenge(name));
      return record && { secureContext: contextOf(record), distributed: true };
    } catch (error) {
      this.logger.error({ identifier: name, ...errorFields(error) }, 'reading challenge from storage');
      return undefined;
    }
  }
}

/** The SNI the CA sends for this challenge: the name, or the reverse name of an IP address. */
function sniNameOf(challenge: PresentedChallenge): string {
  return challenge.identifierType === 'ip' ? reverseDnsName(challenge.identifier) : challenge.identifier;
}

function contextOf(record: ChallengeCertificate): tls.SecureContext {
  return tls.createSecureContext({ cert: record.certificatePem, key: record.privateKeyPem });
}

/** DNS names through our DER builder (on the challenge's critical path); IP addresses through acme-client's. */
async function challengeCertificate(challenge: PresentedChallenge): Promise<ChallengeCertificate> {
  const type = challenge.identifierType ?? 'dns';
  const privateKeyPem = generatePrivateKeyPem('ecdsa-p256');
  if (type === 'dns') {
    const certificatePem = alpnChallengeCertificatePem(
      challenge.identifier,
      challenge.keyAuthorization,
      privateKeyPem,
    );
    return { certificatePem, privateKeyPem };
  }
  const [key, certificate] = await acmeClient.crypto.createAlpnCertificate(
    { identifier: { type, value: challenge.identifier } } as never,
    challenge.keyAuthorization,
    privateKeyPem,
  );
  return { certificatePem: certificate.toString(), privateKeyPem: key.toString() };
}
