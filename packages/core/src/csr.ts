/**
 * @module The certificate signing request for an order (RFC 2986), built as DER and signed with
 * node:crypto: well under a millisecond, where acme-client's pure-JS builder blocks the event loop for
 * 6–8 ms right while the challenge is being answered. DNS names only; IP identifiers use acme-client's.
 */
import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { bits, nullValue, oid, sequence, set, tlv, utf8 } from './der.js';

const OID = {
  commonName: '2.5.4.3',
  subjectAltName: '2.5.29.17',
  extensionRequest: '1.2.840.113549.1.9.14',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  sha256WithRsa: '1.2.840.113549.1.1.11',
};
/** RFC 5280's upper bound on a common name; longer first names go in the SAN only. */
const MAX_COMMON_NAME_LENGTH = 64;

/** DER of a CSR for DNS `names` (the first is also the common name when it fits), signed by the key. */
export function csrDer(names: string[], privateKeyPem: string): Buffer {
  const privateKey = createPrivateKey(privateKeyPem);
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const first = names[0] ?? '';
  const subject =
    first.length > 0 && first.length <= MAX_COMMON_NAME_LENGTH
      ? sequence(set(sequence(oid(OID.commonName), utf8(first))))
      : sequence();
  const altNames = sequence(...names.map((name) => tlv(0x82, Buffer.from(name, 'ascii'))));
  const extensions = sequence(sequence(oid(OID.subjectAltName), tlv(0x04, altNames)));
  const attributes = tlv(0xa0, sequence(oid(OID.extensionRequest), set(extensions)));
  const info = sequence(tlv(0x02, Buffer.from([0])), subject, spki, attributes);
  const { digest, algorithm } = signatureAlgorithm(privateKey.asymmetricKeyDetails?.namedCurve);
  return sequence(info, algorithm, bits(sign(digest, info, privateKey)));
}

function signatureAlgorithm(namedCurve: string | undefined): { digest: string; algorithm: Buffer } {
  if (namedCurve === 'secp384r1') return { digest: 'sha384', algorithm: sequence(oid(OID.ecdsaWithSha384)) };
  if (namedCurve) return { digest: 'sha256', algorithm: sequence(oid(OID.ecdsaWithSha256)) };
  return { digest: 'sha256', algorithm: sequence(oid(OID.sha256WithRsa), nullValue()) };
}
