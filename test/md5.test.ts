import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { projectRoot } from '../src/paths.ts';

// The page's own MD5 (public/md5.js, plain JavaScript for the browser) against Node's, on the RFC's test suite
// and on random buffers around every padding boundary.

interface Md5Module {
  md5(input: Uint8Array | ArrayBuffer): Uint8Array;
  md5Hex(input: Uint8Array | ArrayBuffer): string;
  md5Base64(input: Uint8Array | ArrayBuffer): string;
  md5OfBlob(blob: Blob): Promise<string>;
  Md5: new () => { update(input: Uint8Array): unknown; digest(): Uint8Array };
}

// Imported by URL: the module is JavaScript served to browsers, with no TypeScript declarations of its own.
const { md5, md5Hex, md5Base64, md5OfBlob, Md5 } = (await import(pathToFileURL(join(projectRoot, 'public', 'md5.js')).href)) as Md5Module;

const nodeMd5 = (data: Uint8Array) => createHash('md5').update(data).digest();

describe('public/md5.js', () => {
  test("the RFC 1321 test suite (appendix A.5)", () => {
    const suite: [string, string][] = [
      ['', 'd41d8cd98f00b204e9800998ecf8427e'],
      ['a', '0cc175b9c0f1b6a831c399e269772661'],
      ['abc', '900150983cd24fb0d6963f7d28e17f72'],
      ['message digest', 'f96b697d7cb7938d525a2f31aaf161d0'],
      ['abcdefghijklmnopqrstuvwxyz', 'c3fcd3d76192e4007dfb496cca67e13b'],
      ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 'd174ab98d277d9f5a5611c2c9f419d9f'],
      ['12345678901234567890123456789012345678901234567890123456789012345678901234567890', '57edf4a22be3c955ac49da2e2107b67a'],
    ];
    for (const [text, digest] of suite) assert.equal(md5Hex(new TextEncoder().encode(text)), digest, JSON.stringify(text));
  });

  test('equals node:crypto on random buffers of every size around the 64-byte block and its padding', () => {
    const sizes = [0, 1, 2, 3, 4, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4095, 4096, 65_535, 65_536, 65_537];
    for (const size of sizes) {
      for (let round = 0; round < 3; round++) {
        const data = randomBytes(size);
        assert.deepEqual(Buffer.from(md5(data)), nodeMd5(data), `${size} bytes`);
      }
    }
  });

  test('equals node:crypto on a few MiB, and on a view into a larger buffer', () => {
    for (const size of [1024 * 1024, 3 * 1024 * 1024 + 17, 8 * 1024 * 1024]) {
      const data = randomBytes(size);
      assert.equal(md5Base64(data), nodeMd5(data).toString('base64'), `${size} bytes`);
    }
    const big = randomBytes(10_000);
    const view = big.subarray(123, 123 + 5_000);
    assert.equal(md5Hex(view), nodeMd5(view).toString('hex'), 'only the view is hashed');
    assert.equal(md5Hex(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength)), nodeMd5(view).toString('hex'), 'an ArrayBuffer too');
  });

  test('past 512 MiB, where the length in bits needs the high word (parts grow to ~525 MiB for 5 TiB files)', () => {
    const data = Buffer.alloc(512 * 1024 * 1024 + 3, 0x5a);
    assert.equal(md5Hex(data), nodeMd5(data).toString('hex'));
  });

  test('fed in pieces of every length, the digest is the whole buffer\'s', () => {
    const data = randomBytes(3 * 64 * 64 + 17);
    for (const piece of [1, 3, 63, 64, 65, 127, 1000]) {
      const hash = new Md5();
      for (let start = 0; start < data.length; start += piece) hash.update(data.subarray(start, start + piece));
      assert.deepEqual(Buffer.from(hash.digest()), nodeMd5(data), `pieces of ${piece}`);
    }
  });

  test('a Blob is hashed slice by slice (a whole file sent as one part is never read whole)', async () => {
    const data = randomBytes(8 * 1024 * 1024 * 2 + 1234);
    assert.equal(await md5OfBlob(new Blob([data])), nodeMd5(data).toString('base64'));
    assert.equal(await md5OfBlob(new Blob([])), nodeMd5(new Uint8Array(0)).toString('base64'));
  });

  test('Content-MD5 form: 22 base64 characters and ==', () => {
    assert.match(md5Base64(new Uint8Array([1, 2, 3])), /^[A-Za-z0-9+/]{22}==$/);
  });
});
