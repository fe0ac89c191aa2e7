import { createHmac } from 'node:crypto';

// ShotGrid's AMI signature, as Autodesk's sample handler checks it: every posted field but `signature` (decoded
// values, `timestamp` included) as a `name=value\r\n` line, the lines sorted as whole strings and joined, then
// HMAC-SHA1 keyed with the AMI's secret token, hex digest. Pure: no clock, no I/O.

/** The hex HMAC-SHA1 signature ShotGrid puts in the `signature` field for these fields. */
export function computeAmiSignature(fields: Iterable<readonly [string, string]>, secret: string): string {
  const lines: string[] = [];
  for (const [name, value] of fields) {
    if (name !== 'signature') lines.push(`${name}=${value}\r\n`);
  }
  // Sorted by code point (= UTF-8 byte order), as Python sorts str; JavaScript's default sort compares UTF-16
  // code units, which puts characters beyond U+FFFF before U+E000–U+FFFF.
  const encoded = lines.map((line) => Buffer.from(line, 'utf8')).sort(Buffer.compare);
  return createHmac('sha1', Buffer.from(secret, 'utf8')).update(Buffer.concat(encoded)).digest('hex');
}

/** The `timestamp` field: UTC to the second, `YYYY-MM-DDTHH:MM:SSZ`. */
export function amiTimestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
