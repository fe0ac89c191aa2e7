import type { Readable } from 'node:stream';

// Cuts a byte stream into parts of a fixed size, each one Buffer, without copying more than once: chunks are
// gathered until a part is full, then joined. The consumer pulls parts one at a time, so a slow consumer holds
// the stream back (backpressure) and memory stays at the parts it has not yet let go of.

export async function* cutParts(source: Readable, partSize: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  // destroyOnReturn off: a caller that stops early leaves the rest of the stream to be drained (a multipart
  // form's next file is behind it), instead of destroying it.
  for await (const chunk of source.iterator({ destroyOnReturn: false })) {
    let data = chunk as Buffer;
    while (data.length > 0) {
      const take = Math.min(data.length, partSize - pendingBytes);
      pending.push(take === data.length ? data : data.subarray(0, take));
      pendingBytes += take;
      data = data.subarray(take);
      if (pendingBytes === partSize) {
        yield pending.length === 1 ? Buffer.from(pending[0]!) : Buffer.concat(pending, partSize);
        pending = [];
        pendingBytes = 0;
      }
    }
  }
  if (pendingBytes > 0 || pending.length > 0) yield Buffer.concat(pending, pendingBytes);
}
