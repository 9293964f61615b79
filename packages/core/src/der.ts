/** @module The few DER encodings our certificate and CSR builders need (X.690), nothing more. */

export function tlv(tag: number, content: Buffer): Buffer {
  const length = content.length;
  const header =
    length < 0x80
      ? [tag, length]
      : length < 0x100
        ? [tag, 0x81, length]
        : length < 0x10000
          ? [tag, 0x82, length >> 8, length & 0xff]
          : [tag, 0x83, length >> 16, (length >> 8) & 0xff, length & 0xff];
  return Buffer.concat([Buffer.from(header), content]);
}

export const sequence = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
export const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
export const octets = (content: Buffer) => tlv(0x04, content);
export const integer = (bytes: Buffer) => tlv(0x02, bytes);
export const utf8 = (text: string) => tlv(0x0c, Buffer.from(text, 'utf8'));
export const nullValue = () => Buffer.from([0x05, 0x00]);
/** A BIT STRING of whole bytes (no unused bits), as signatures are. */
export const bits = (content: Buffer) => tlv(0x03, Buffer.concat([Buffer.from([0]), content]));

export function oid(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [40 * first + second];
  for (const arc of rest) {
    const base128 = [arc & 0x7f];
    for (let value = arc >>> 7; value > 0; value >>>= 7) base128.unshift((value & 0x7f) | 0x80);
    bytes.push(...base128);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** UTCTime (YYMMDDHHMMSSZ), as RFC 5280 asks for dates before 2050. */
export function utcTime(ms: number): Buffer {
  const iso = new Date(ms).toISOString(); // 2026-12-02T15:04:05.123Z
  const digits = iso.slice(2, 19).replace(/[-T:]/g, '');
  return tlv(0x17, Buffer.from(`${digits}Z`, 'ascii'));
}

export function pem(label: string, der: Buffer): string {
  const base64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${base64}\n-----END ${label}-----\n`;
}
