import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { thumbnailPng } from '../src/sandbox/media.ts';
import { imageFormatOf } from '../src/shared/image-signature.ts';
import { imageCheck, NotAnImageError } from '../src/transfer/image-check.ts';

// Thumbnails are images by their content: the signature of the first bytes decides (src/shared/image-signature.ts,
// the same code in the page and the service), and the check in front of the storage PUT lets an image's bytes
// through untouched and nothing at all of anything else.

const bytes = (...values: number[]) => Buffer.from(values);
const padded = (head: Buffer) => Buffer.concat([head, Buffer.alloc(16)]);

test('the formats a thumbnail can be made from, told by their signatures', () => {
  assert.equal(imageFormatOf(thumbnailPng(1)), 'PNG');
  assert.equal(imageFormatOf(padded(bytes(0xff, 0xd8, 0xff, 0xe0))), 'JPEG');
  assert.equal(imageFormatOf(padded(Buffer.from('GIF89a'))), 'GIF');
  assert.equal(imageFormatOf(padded(Buffer.from('GIF87a'))), 'GIF');
  assert.equal(imageFormatOf(padded(Buffer.concat([Buffer.from('RIFF'), bytes(1, 2, 3, 4), Buffer.from('WEBPVP8 ')]))), 'WebP');
  assert.equal(imageFormatOf(padded(bytes(0x49, 0x49, 0x2a, 0x00))), 'TIFF');
  assert.equal(imageFormatOf(padded(bytes(0x4d, 0x4d, 0x00, 0x2a))), 'TIFF');
  assert.equal(imageFormatOf(padded(bytes(0x42, 0x4d, 0x36, 0x10, 0x0e, 0x00, 0, 0, 0, 0, 0x36))), 'BMP');
});

test('names say nothing, and near misses are not images', () => {
  for (const head of [
    Buffer.from('%PDF-1.4'),
    Buffer.from('RIFF\u0000\u0000\u0000\u0000WAVEfmt '),
    Buffer.from('GIF90a'),
    Buffer.from('BM this is a text about BMW'),
    bytes(0x89, 0x50, 0x4e, 0x47),
    bytes(0x00, 0x00, 0x00, 0x18, 0x66, 0x74, 0x79, 0x70),
    Buffer.alloc(0),
  ]) {
    assert.equal(imageFormatOf(head), null, head.toString('latin1'));
  }
});

test('the check passes an image through byte for byte, however its chunks fall', async () => {
  const png = thumbnailPng(2, 'through');
  const chunks = [png.subarray(0, 3), png.subarray(3, 9), png.subarray(9, 40), png.subarray(40)];
  const out = await buffer(Readable.from(chunks).pipe(imageCheck('a.png')));
  assert.deepEqual(out, png);
});

test('the check fails anything else before a single byte goes on, short files included', async () => {
  for (const content of [Buffer.from('%PDF-1.4 and then a long document that is no picture'), Buffer.from('tiny'), Buffer.alloc(0)]) {
    const received: Buffer[] = [];
    await assert.rejects(
      pipeline(Readable.from(content.length === 0 ? [] : [content.subarray(0, 2), content.subarray(2)]), imageCheck('frame.png'), async function* (source) {
        for await (const chunk of source) received.push(chunk as Buffer);
      }),
      (error: unknown) => error instanceof NotAnImageError && /“frame\.png” is not an image/.test(error.message),
    );
    assert.equal(received.length, 0, 'nothing went on');
  }
});
