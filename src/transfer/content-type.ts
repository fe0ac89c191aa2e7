import { lookup } from 'mime-types';

/**
 * The type storage will serve a file as, guessed from its name (storage keeps what the upload PUT says; S3 says
 * binary/octet-stream when nothing was sent, and browsers then cannot play a movie in place).
 */
export function contentTypeFor(fileName: string): string {
  return lookup(fileName) || 'application/octet-stream';
}
