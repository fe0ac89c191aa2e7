// MD5 (RFC 1321), written from the RFC's description: the page sends every part with `Content-MD5` so the service
// can prove that what storage holds is what left the page, and browsers' SubtleCrypto has no MD5. Plain JavaScript with no
// imports, so the same file runs in the page's worker and in Node's tests. Incremental: a part may be a whole file
// of gigabytes (attachments go to the site in one PUT), read slice by slice.
//
// The 64 steps are written out, as the RFC lists them, with the sine table's values inline: a loop over tables
// runs about four times slower in V8, and the page hashes every byte it sends.

/**
 * The compression function (RFC 1321, 3.4) over the 64-byte blocks of `bytes` in [offset, end), updating
 * `state` (the words A, B, C, D). Each step is a = b + ((a + F(b,c,d) + X[k] + T[i]) <<< s), where T[i] is
 * floor(2^32 · |sin(i)|) and X[k] the block's k-th little-endian word.
 */
function compressBlocks(state, bytes, offset, end) {
  let a0 = state[0];
  let b0 = state[1];
  let c0 = state[2];
  let d0 = state[3];
  for (let p = offset; p < end; p += 64) {
    const x0 = bytes[p + 0] | (bytes[p + 1] << 8) | (bytes[p + 2] << 16) | (bytes[p + 3] << 24);
    const x1 = bytes[p + 4] | (bytes[p + 5] << 8) | (bytes[p + 6] << 16) | (bytes[p + 7] << 24);
    const x2 = bytes[p + 8] | (bytes[p + 9] << 8) | (bytes[p + 10] << 16) | (bytes[p + 11] << 24);
    const x3 = bytes[p + 12] | (bytes[p + 13] << 8) | (bytes[p + 14] << 16) | (bytes[p + 15] << 24);
    const x4 = bytes[p + 16] | (bytes[p + 17] << 8) | (bytes[p + 18] << 16) | (bytes[p + 19] << 24);
    const x5 = bytes[p + 20] | (bytes[p + 21] << 8) | (bytes[p + 22] << 16) | (bytes[p + 23] << 24);
    const x6 = bytes[p + 24] | (bytes[p + 25] << 8) | (bytes[p + 26] << 16) | (bytes[p + 27] << 24);
    const x7 = bytes[p + 28] | (bytes[p + 29] << 8) | (bytes[p + 30] << 16) | (bytes[p + 31] << 24);
    const x8 = bytes[p + 32] | (bytes[p + 33] << 8) | (bytes[p + 34] << 16) | (bytes[p + 35] << 24);
    const x9 = bytes[p + 36] | (bytes[p + 37] << 8) | (bytes[p + 38] << 16) | (bytes[p + 39] << 24);
    const x10 = bytes[p + 40] | (bytes[p + 41] << 8) | (bytes[p + 42] << 16) | (bytes[p + 43] << 24);
    const x11 = bytes[p + 44] | (bytes[p + 45] << 8) | (bytes[p + 46] << 16) | (bytes[p + 47] << 24);
    const x12 = bytes[p + 48] | (bytes[p + 49] << 8) | (bytes[p + 50] << 16) | (bytes[p + 51] << 24);
    const x13 = bytes[p + 52] | (bytes[p + 53] << 8) | (bytes[p + 54] << 16) | (bytes[p + 55] << 24);
    const x14 = bytes[p + 56] | (bytes[p + 57] << 8) | (bytes[p + 58] << 16) | (bytes[p + 59] << 24);
    const x15 = bytes[p + 60] | (bytes[p + 61] << 8) | (bytes[p + 62] << 16) | (bytes[p + 63] << 24);
    let a = a0;
    let b = b0;
    let c = c0;
    let d = d0;
    let t;
    // Round 1: F(X,Y,Z) = XY v not(X) Z.
    t = (a + ((b & c) | (~b & d)) + x0 + 0xd76aa478) | 0;
    a = (b + ((t << 7) | (t >>> 25))) | 0;
    t = (d + ((a & b) | (~a & c)) + x1 + 0xe8c7b756) | 0;
    d = (a + ((t << 12) | (t >>> 20))) | 0;
    t = (c + ((d & a) | (~d & b)) + x2 + 0x242070db) | 0;
    c = (d + ((t << 17) | (t >>> 15))) | 0;
    t = (b + ((c & d) | (~c & a)) + x3 + 0xc1bdceee) | 0;
    b = (c + ((t << 22) | (t >>> 10))) | 0;
    t = (a + ((b & c) | (~b & d)) + x4 + 0xf57c0faf) | 0;
    a = (b + ((t << 7) | (t >>> 25))) | 0;
    t = (d + ((a & b) | (~a & c)) + x5 + 0x4787c62a) | 0;
    d = (a + ((t << 12) | (t >>> 20))) | 0;
    t = (c + ((d & a) | (~d & b)) + x6 + 0xa8304613) | 0;
    c = (d + ((t << 17) | (t >>> 15))) | 0;
    t = (b + ((c & d) | (~c & a)) + x7 + 0xfd469501) | 0;
    b = (c + ((t << 22) | (t >>> 10))) | 0;
    t = (a + ((b & c) | (~b & d)) + x8 + 0x698098d8) | 0;
    a = (b + ((t << 7) | (t >>> 25))) | 0;
    t = (d + ((a & b) | (~a & c)) + x9 + 0x8b44f7af) | 0;
    d = (a + ((t << 12) | (t >>> 20))) | 0;
    t = (c + ((d & a) | (~d & b)) + x10 + 0xffff5bb1) | 0;
    c = (d + ((t << 17) | (t >>> 15))) | 0;
    t = (b + ((c & d) | (~c & a)) + x11 + 0x895cd7be) | 0;
    b = (c + ((t << 22) | (t >>> 10))) | 0;
    t = (a + ((b & c) | (~b & d)) + x12 + 0x6b901122) | 0;
    a = (b + ((t << 7) | (t >>> 25))) | 0;
    t = (d + ((a & b) | (~a & c)) + x13 + 0xfd987193) | 0;
    d = (a + ((t << 12) | (t >>> 20))) | 0;
    t = (c + ((d & a) | (~d & b)) + x14 + 0xa679438e) | 0;
    c = (d + ((t << 17) | (t >>> 15))) | 0;
    t = (b + ((c & d) | (~c & a)) + x15 + 0x49b40821) | 0;
    b = (c + ((t << 22) | (t >>> 10))) | 0;
    // Round 2: G(X,Y,Z) = XZ v Y not(Z).
    t = (a + ((b & d) | (c & ~d)) + x1 + 0xf61e2562) | 0;
    a = (b + ((t << 5) | (t >>> 27))) | 0;
    t = (d + ((a & c) | (b & ~c)) + x6 + 0xc040b340) | 0;
    d = (a + ((t << 9) | (t >>> 23))) | 0;
    t = (c + ((d & b) | (a & ~b)) + x11 + 0x265e5a51) | 0;
    c = (d + ((t << 14) | (t >>> 18))) | 0;
    t = (b + ((c & a) | (d & ~a)) + x0 + 0xe9b6c7aa) | 0;
    b = (c + ((t << 20) | (t >>> 12))) | 0;
    t = (a + ((b & d) | (c & ~d)) + x5 + 0xd62f105d) | 0;
    a = (b + ((t << 5) | (t >>> 27))) | 0;
    t = (d + ((a & c) | (b & ~c)) + x10 + 0x02441453) | 0;
    d = (a + ((t << 9) | (t >>> 23))) | 0;
    t = (c + ((d & b) | (a & ~b)) + x15 + 0xd8a1e681) | 0;
    c = (d + ((t << 14) | (t >>> 18))) | 0;
    t = (b + ((c & a) | (d & ~a)) + x4 + 0xe7d3fbc8) | 0;
    b = (c + ((t << 20) | (t >>> 12))) | 0;
    t = (a + ((b & d) | (c & ~d)) + x9 + 0x21e1cde6) | 0;
    a = (b + ((t << 5) | (t >>> 27))) | 0;
    t = (d + ((a & c) | (b & ~c)) + x14 + 0xc33707d6) | 0;
    d = (a + ((t << 9) | (t >>> 23))) | 0;
    t = (c + ((d & b) | (a & ~b)) + x3 + 0xf4d50d87) | 0;
    c = (d + ((t << 14) | (t >>> 18))) | 0;
    t = (b + ((c & a) | (d & ~a)) + x8 + 0x455a14ed) | 0;
    b = (c + ((t << 20) | (t >>> 12))) | 0;
    t = (a + ((b & d) | (c & ~d)) + x13 + 0xa9e3e905) | 0;
    a = (b + ((t << 5) | (t >>> 27))) | 0;
    t = (d + ((a & c) | (b & ~c)) + x2 + 0xfcefa3f8) | 0;
    d = (a + ((t << 9) | (t >>> 23))) | 0;
    t = (c + ((d & b) | (a & ~b)) + x7 + 0x676f02d9) | 0;
    c = (d + ((t << 14) | (t >>> 18))) | 0;
    t = (b + ((c & a) | (d & ~a)) + x12 + 0x8d2a4c8a) | 0;
    b = (c + ((t << 20) | (t >>> 12))) | 0;
    // Round 3: H(X,Y,Z) = X xor Y xor Z.
    t = (a + (b ^ c ^ d) + x5 + 0xfffa3942) | 0;
    a = (b + ((t << 4) | (t >>> 28))) | 0;
    t = (d + (a ^ b ^ c) + x8 + 0x8771f681) | 0;
    d = (a + ((t << 11) | (t >>> 21))) | 0;
    t = (c + (d ^ a ^ b) + x11 + 0x6d9d6122) | 0;
    c = (d + ((t << 16) | (t >>> 16))) | 0;
    t = (b + (c ^ d ^ a) + x14 + 0xfde5380c) | 0;
    b = (c + ((t << 23) | (t >>> 9))) | 0;
    t = (a + (b ^ c ^ d) + x1 + 0xa4beea44) | 0;
    a = (b + ((t << 4) | (t >>> 28))) | 0;
    t = (d + (a ^ b ^ c) + x4 + 0x4bdecfa9) | 0;
    d = (a + ((t << 11) | (t >>> 21))) | 0;
    t = (c + (d ^ a ^ b) + x7 + 0xf6bb4b60) | 0;
    c = (d + ((t << 16) | (t >>> 16))) | 0;
    t = (b + (c ^ d ^ a) + x10 + 0xbebfbc70) | 0;
    b = (c + ((t << 23) | (t >>> 9))) | 0;
    t = (a + (b ^ c ^ d) + x13 + 0x289b7ec6) | 0;
    a = (b + ((t << 4) | (t >>> 28))) | 0;
    t = (d + (a ^ b ^ c) + x0 + 0xeaa127fa) | 0;
    d = (a + ((t << 11) | (t >>> 21))) | 0;
    t = (c + (d ^ a ^ b) + x3 + 0xd4ef3085) | 0;
    c = (d + ((t << 16) | (t >>> 16))) | 0;
    t = (b + (c ^ d ^ a) + x6 + 0x04881d05) | 0;
    b = (c + ((t << 23) | (t >>> 9))) | 0;
    t = (a + (b ^ c ^ d) + x9 + 0xd9d4d039) | 0;
    a = (b + ((t << 4) | (t >>> 28))) | 0;
    t = (d + (a ^ b ^ c) + x12 + 0xe6db99e5) | 0;
    d = (a + ((t << 11) | (t >>> 21))) | 0;
    t = (c + (d ^ a ^ b) + x15 + 0x1fa27cf8) | 0;
    c = (d + ((t << 16) | (t >>> 16))) | 0;
    t = (b + (c ^ d ^ a) + x2 + 0xc4ac5665) | 0;
    b = (c + ((t << 23) | (t >>> 9))) | 0;
    // Round 4: I(X,Y,Z) = Y xor (X v not(Z)).
    t = (a + (c ^ (b | ~d)) + x0 + 0xf4292244) | 0;
    a = (b + ((t << 6) | (t >>> 26))) | 0;
    t = (d + (b ^ (a | ~c)) + x7 + 0x432aff97) | 0;
    d = (a + ((t << 10) | (t >>> 22))) | 0;
    t = (c + (a ^ (d | ~b)) + x14 + 0xab9423a7) | 0;
    c = (d + ((t << 15) | (t >>> 17))) | 0;
    t = (b + (d ^ (c | ~a)) + x5 + 0xfc93a039) | 0;
    b = (c + ((t << 21) | (t >>> 11))) | 0;
    t = (a + (c ^ (b | ~d)) + x12 + 0x655b59c3) | 0;
    a = (b + ((t << 6) | (t >>> 26))) | 0;
    t = (d + (b ^ (a | ~c)) + x3 + 0x8f0ccc92) | 0;
    d = (a + ((t << 10) | (t >>> 22))) | 0;
    t = (c + (a ^ (d | ~b)) + x10 + 0xffeff47d) | 0;
    c = (d + ((t << 15) | (t >>> 17))) | 0;
    t = (b + (d ^ (c | ~a)) + x1 + 0x85845dd1) | 0;
    b = (c + ((t << 21) | (t >>> 11))) | 0;
    t = (a + (c ^ (b | ~d)) + x8 + 0x6fa87e4f) | 0;
    a = (b + ((t << 6) | (t >>> 26))) | 0;
    t = (d + (b ^ (a | ~c)) + x15 + 0xfe2ce6e0) | 0;
    d = (a + ((t << 10) | (t >>> 22))) | 0;
    t = (c + (a ^ (d | ~b)) + x6 + 0xa3014314) | 0;
    c = (d + ((t << 15) | (t >>> 17))) | 0;
    t = (b + (d ^ (c | ~a)) + x13 + 0x4e0811a1) | 0;
    b = (c + ((t << 21) | (t >>> 11))) | 0;
    t = (a + (c ^ (b | ~d)) + x4 + 0xf7537e82) | 0;
    a = (b + ((t << 6) | (t >>> 26))) | 0;
    t = (d + (b ^ (a | ~c)) + x11 + 0xbd3af235) | 0;
    d = (a + ((t << 10) | (t >>> 22))) | 0;
    t = (c + (a ^ (d | ~b)) + x2 + 0x2ad7d2bb) | 0;
    c = (d + ((t << 15) | (t >>> 17))) | 0;
    t = (b + (d ^ (c | ~a)) + x9 + 0xeb86d391) | 0;
    b = (c + ((t << 21) | (t >>> 11))) | 0;
    a0 = (a0 + a) | 0;
    b0 = (b0 + b) | 0;
    c0 = (c0 + c) | 0;
    d0 = (d0 + d) | 0;
  }
  state[0] = a0;
  state[1] = b0;
  state[2] = c0;
  state[3] = d0;
}

/** Incremental MD5: bytes are fed in pieces (a file read slice by slice, never whole), then the digest taken. */
export class Md5 {
  #state = new Int32Array([0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476]);
  /** Bytes of an unfinished 64-byte block, carried to the next update. */
  #pending = new Uint8Array(64);
  #pendingLength = 0;
  #length = 0;

  /** @param {Uint8Array | ArrayBuffer | ArrayBufferView} input */
  update(input) {
    let bytes = asBytes(input);
    this.#length += bytes.byteLength;
    if (this.#pendingLength > 0) {
      const take = Math.min(64 - this.#pendingLength, bytes.byteLength);
      this.#pending.set(bytes.subarray(0, take), this.#pendingLength);
      this.#pendingLength += take;
      bytes = bytes.subarray(take);
      if (this.#pendingLength < 64) return this;
      compressBlocks(this.#state, this.#pending, 0, 64);
      this.#pendingLength = 0;
    }
    const whole = bytes.byteLength - (bytes.byteLength % 64);
    compressBlocks(this.#state, bytes, 0, whole);
    this.#pending.set(bytes.subarray(whole));
    this.#pendingLength = bytes.byteLength - whole;
    return this;
  }

  /** The 16-byte digest; the hash is used up. */
  digest() {
    // Padding (3.1): a 1 bit, zeros up to 56 bytes mod 64, then the length in bits as 64-bit little-endian (3.2).
    const rest = this.#pendingLength;
    const tail = new Uint8Array(rest < 56 ? 64 : 128);
    tail.set(this.#pending.subarray(0, rest));
    tail[rest] = 0x80;
    const tailView = new DataView(tail.buffer);
    tailView.setUint32(tail.length - 8, (this.#length * 8) >>> 0, true);
    tailView.setUint32(tail.length - 4, Math.floor(this.#length / 0x2000_0000), true);
    compressBlocks(this.#state, tail, 0, tail.length);
    // The digest: A, B, C, D, each low-order byte first (3.5).
    const digest = new Uint8Array(16);
    const out = new DataView(digest.buffer);
    for (let i = 0; i < 4; i++) out.setInt32(4 * i, this.#state[i], true);
    return digest;
  }
}

function asBytes(input) {
  return input instanceof Uint8Array ? input : ArrayBuffer.isView(input) ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength) : new Uint8Array(input);
}

/** The 16-byte MD5 digest of `input` (a Uint8Array, Node Buffer, ArrayBuffer or other view). */
export function md5(input) {
  return new Md5().update(input).digest();
}

/** A digest in base64, as the Content-MD5 header carries it. */
export function base64Of(digest) {
  return btoa(String.fromCharCode(...digest));
}

/** Bytes read from a Blob at a time: a part may be a whole file of gigabytes, never read whole. */
const BLOB_SLICE = 8 * 1024 * 1024;

/**
 * The MD5 (base64) of a Blob, read slice by slice.
 * @param {Blob} blob
 */
export async function md5OfBlob(blob) {
  const hash = new Md5();
  for (let start = 0; start < blob.size; start += BLOB_SLICE) {
    hash.update(new Uint8Array(await blob.slice(start, start + BLOB_SLICE).arrayBuffer()));
  }
  return base64Of(hash.digest());
}

/** The digest as lower-case hex, e.g. for "abc": 900150983cd24fb0d6963f7d28e17f72. */
export function md5Hex(input) {
  return Array.from(md5(input), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** The digest in base64, as the Content-MD5 header carries it. */
export function md5Base64(input) {
  return base64Of(md5(input));
}
