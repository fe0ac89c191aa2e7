import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ApiError, API_CODE } from './api-errors.ts';
import type { EntityRef } from './records.ts';

// Upload links of a local install (`storage_service: "sg"`): the bytes go to the site itself, not to S3.
// The link is the record's own `_upload` path with the query a real one carries (ksallee/sg-groundtruth,
// corpus/endpoints/put_entity_type_id_field_upload.md): filename, expiration, signature, user_id, user_type,
// all required. The PUT must also carry the Bearer token (shotgrid-rest.md); the signature, not the token, says
// which upload the bytes are for. How a real site signs is not known: here an HMAC of the path, the file name,
// the uploader and the expiry, with a secret the site makes at start.

const REQUIRED = ['filename', 'expiration', 'signature', 'user_id', 'user_type'] as const;

export interface LocalUploadTicket {
  /** The `_upload` path the link points at (without the query). */
  path: string;
  filename: string;
  /** Who the init was made for: the PUT must be made by the same identity. */
  user: EntityRef;
  /** Unix seconds. */
  expiration: number;
  signature: string;
}

export class LocalUploadSigner {
  readonly #secret = randomBytes(32);

  /** A PUT link on the site for `path`, valid `expiresIn` seconds. */
  sign(siteUrl: string, path: string, filename: string, user: EntityRef, expiresIn: number): { url: string; signature: string } {
    const expiration = Math.floor(Date.now() / 1000) + expiresIn;
    const signature = this.#mac(path, filename, user, expiration);
    const query = new URLSearchParams({
      filename,
      expiration: String(expiration),
      signature,
      user_id: String(user.id),
      user_type: user.type,
    });
    return { url: `${siteUrl}${path}?${query.toString()}`, signature };
  }

  /**
   * Checks a PUT to a signed link: every parameter present (400 naming the missing ones, as the real route does),
   * the signature this site made for this path, not expired, and made by the identity the link names.
   */
  verify(path: string, query: Record<string, unknown>, actingAs: EntityRef): LocalUploadTicket {
    const text = (name: string): string | undefined => (typeof query[name] === 'string' && query[name] !== '' ? (query[name] as string) : undefined);
    const missing = REQUIRED.filter((name) => text(name) === undefined);
    if (missing.length > 0) {
      throw new ApiError(400, API_CODE.badRequest, 'Request Parameters invalid.', Object.fromEntries(missing.map((name) => [name, [`${name} is missing`]])));
    }
    const filename = text('filename')!;
    const expiration = Number(text('expiration'));
    const userId = Number(text('user_id'));
    const user = { type: text('user_type')!, id: userId } as EntityRef;
    const signature = text('signature')!;
    const expected = Number.isSafeInteger(expiration) && Number.isSafeInteger(userId) ? this.#mac(path, filename, user, expiration) : '';
    if (!sameText(expected, signature)) throw new ApiError(403, API_CODE.auth, 'The upload link signature is not valid');
    if (Date.now() / 1000 >= expiration) throw new ApiError(403, API_CODE.auth, 'The upload link has expired');
    // Pessimistic: the bytes must come from the identity the init was made for, not just any valid token.
    if (actingAs.type !== user.type || actingAs.id !== user.id) {
      throw new ApiError(403, API_CODE.permission, 'This upload link was made for another user');
    }
    return { path, filename, user, expiration, signature };
  }

  #mac(path: string, filename: string, user: EntityRef, expiration: number): string {
    return createHmac('sha256', this.#secret).update(`PUT\n${path}\n${filename}\n${user.type}:${user.id}\n${expiration}`).digest('hex');
  }
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
