import { createHmac, timingSafeEqual } from 'node:crypto';

// ShotGrid's AMI signature, as Autodesk's sample handler checks it: every posted field but `signature` (decoded
// values, `timestamp` included) as a `name=value\r\n` line, the lines sorted as whole strings and joined, then
// HMAC-SHA1 keyed with the AMI's secret token, hex digest. Pure: no clock, no I/O.

/** The bytes ShotGrid signs for these fields: the same for every secret, so a verifier builds it once. */
export function amiSigningMessage(fields: Iterable<readonly [string, string]>): Buffer {
  const lines: Buffer[] = [];
  for (const [name, value] of fields) {
    if (name !== 'signature') lines.push(Buffer.from(`${name}=${value}\r\n`, 'utf8'));
  }
  // Sorted by code point (= UTF-8 byte order), as Python sorts str; JavaScript's default sort compares UTF-16
  // code units, which puts characters beyond U+FFFF before U+E000–U+FFFF.
  return Buffer.concat(lines.sort(Buffer.compare));
}

/** The hex HMAC-SHA1 of a signing message (see amiSigningMessage) with one secret token. */
export function signAmiMessage(message: Buffer, secret: string): string {
  return createHmac('sha1', Buffer.from(secret, 'utf8')).update(message).digest('hex');
}

/** The hex HMAC-SHA1 signature ShotGrid puts in the `signature` field for these fields. */
export function computeAmiSignature(fields: Iterable<readonly [string, string]>, secret: string): string {
  return signAmiMessage(amiSigningMessage(fields), secret);
}

/**
 * Compares two signatures in time independent of where they differ, so a forger learns nothing from timing.
 * Only the length may show, and the length of a hex SHA-1 is no secret.
 */
export function signaturesMatch(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** The `timestamp` field: UTC to the second, `YYYY-MM-DDTHH:MM:SSZ`. */
export function amiTimestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
