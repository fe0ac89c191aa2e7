import { Transform } from 'node:stream';
import { IMAGE_FORMATS_TEXT, IMAGE_SIGNATURE_BYTES, imageFormatOf } from '../shared/image-signature.ts';

// A thumbnail must be an image by its content, whatever its name says. This sits in front of the storage PUT
// and holds the first bytes until it can tell: an image's bytes go on untouched, anything else fails the stream
// before a single byte has gone on, so storage stores nothing and the site never processes it.

export class NotAnImageError extends Error {
  constructor(name: string) {
    super(`“${name}” is not an image: its content is not ${IMAGE_FORMATS_TEXT}, whatever its name says.`);
    this.name = 'NotAnImageError';
  }
}

/** Passes the bytes through once their start is an image signature; errors with NotAnImageError otherwise. */
export function imageCheck(name: string): Transform {
  let head: Buffer | null = Buffer.alloc(0);
  /** Lets the held bytes go on if they start an image; the file may be shorter than the signature window. */
  const release = (stream: Transform, held: Buffer, done: (error?: Error | null) => void): void => {
    if (imageFormatOf(held) === null) {
      done(new NotAnImageError(name));
      return;
    }
    stream.push(held);
    done();
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (head === null) {
        done(null, chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      if (head.length < IMAGE_SIGNATURE_BYTES) {
        done();
        return;
      }
      const held = head;
      head = null;
      release(this, held, done);
    },
    flush(done) {
      if (head === null) {
        done();
        return;
      }
      const held = head;
      head = null;
      release(this, held, done);
    },
  });
}
