import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { crc32, inflateSync } from 'node:zlib';
import {
  csvDocument,
  edlDocument,
  encodePng,
  fixtureMovie,
  fixtureMovieNames,
  mediaDir,
  pdfDocument,
  pngImage,
  readMedia,
  textDocument,
  thumbnailPng,
  transientThumbnailPng,
  wavAudio,
} from '../../src/sandbox/media.ts';

const sha256 = (bytes: Buffer | Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

interface DecodedPng {
  width: number;
  height: number;
  /** RGB, row-major. */
  pixels: Uint8Array;
  chunkTypes: string[];
  /** The filter type of each row. */
  filters: number[];
}

/** An independent decoder for what the encoder may emit (8-bit RGB, any filter), checking every CRC on the way. */
function decodePng(png: Buffer): DecodedPng {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  const chunkTypes: string[] = [];
  const idat: Buffer[] = [];
  let ihdr: Buffer | undefined;
  let at = 8;
  while (at < png.length) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + length);
    assert.equal(png.readUInt32BE(at + 8 + length), crc32(png.subarray(at + 4, at + 8 + length)), `CRC of ${type}`);
    chunkTypes.push(type);
    if (type === 'IHDR') ihdr = data;
    if (type === 'IDAT') idat.push(data);
    at += 12 + length;
  }
  assert.equal(at, png.length, 'chunks end exactly at the end of the file');
  assert.equal(chunkTypes[0], 'IHDR');
  assert.equal(chunkTypes.at(-1), 'IEND');
  assert.ok(ihdr);
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  assert.deepEqual([...ihdr.subarray(8)], [8, 2, 0, 0, 0], 'bit depth 8, RGB, deflate, standard filters, no interlace');
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 3;
  assert.equal(raw.length, height * (stride + 1), 'inflated IDAT size');
  const pixels = new Uint8Array(height * stride);
  const filters: number[] = [];
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    filters.push(filter);
    assert.ok(filter <= 4, `row ${y} filter ${filter}`);
    for (let i = 0; i < stride; i++) {
      const a = i >= 3 ? pixels[y * stride + i - 3]! : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + i]! : 0;
      const c = i >= 3 && y > 0 ? pixels[(y - 1) * stride + i - 3]! : 0;
      const p = a + b - c;
      const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
      const predictors = [0, a, b, Math.floor((a + b) / 2), pa <= pb && pa <= pc ? a : pb <= pc ? b : c];
      pixels[y * stride + i] = (raw[y * (stride + 1) + 1 + i]! + predictors[filter]!) & 0xff;
    }
  }
  return { width, height, pixels, chunkTypes, filters };
}

/** A second, stdlib-only decoder in Python: width, height and the sha256 of the unfiltered pixels. */
const pythonPngCheck = `
import sys, zlib, struct, hashlib
d = sys.stdin.buffer.read()
assert d[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
p, idat, hdr = 8, b'', None
while p < len(d):
    n, t = struct.unpack('>I4s', d[p:p+8]); body = d[p+8:p+8+n]
    assert struct.unpack('>I', d[p+8+n:p+12+n])[0] == zlib.crc32(t + body), t
    if t == b'IHDR': hdr = struct.unpack('>IIBBBBB', body)
    if t == b'IDAT': idat += body
    p += 12 + n
w, h = hdr[0], hdr[1]; s = w * 3; raw = zlib.decompress(idat); out = bytearray(); prev = bytearray(s)
for y in range(h):
    f = raw[y*(s+1)]; row = bytearray(raw[y*(s+1)+1:(y+1)*(s+1)])
    for i in range(s):
        a = row[i-3] if i >= 3 else 0; b = prev[i]; c = prev[i-3] if i >= 3 else 0
        if f == 1: row[i] = (row[i] + a) & 255
        elif f == 2: row[i] = (row[i] + b) & 255
        elif f == 3: row[i] = (row[i] + (a + b) // 2) & 255
        elif f == 4:
            q = a + b - c; pa, pb, pc = abs(q-a), abs(q-b), abs(q-c)
            row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    out += row; prev = row
print(w, h, hashlib.sha256(out).hexdigest())
`;
const hasPython = spawnSync('python3', ['--version']).status === 0;

describe('PNG', () => {
  it('thumbnails are valid 480x270 RGB PNGs', () => {
    const png = thumbnailPng(7, 'sh010_comp_v003');
    const { width, height, chunkTypes } = decodePng(png);
    assert.deepEqual([width, height], [480, 270]);
    assert.deepEqual(chunkTypes, ['IHDR', 'IDAT', 'IEND']);
    assert.ok(png.length < 120_000, `thumbnail is ${png.length} bytes`);
  });

  it('the label only changes the band at the bottom, and is drawn in white there', () => {
    const plain = decodePng(thumbnailPng(7)).pixels;
    const labelled = decodePng(thumbnailPng(7, 'SH010')).pixels;
    const bandTop = 270 - 45;
    assert.deepEqual(labelled.subarray(0, bandTop * 480 * 3), plain.subarray(0, bandTop * 480 * 3));
    assert.notDeepEqual(labelled.subarray(bandTop * 480 * 3), plain.subarray(bandTop * 480 * 3));
    // Top-left pixel of the 'S' glyph (column 1 of row 0), at scale 3 from the 12 px margin.
    const at = ((bandTop + 12) * 480 + 12 + 3) * 3;
    assert.deepEqual([...labelled.subarray(at, at + 3)], [255, 255, 255]);
  });

  it('is deterministic per seed, and 40 seeds give 40 different thumbnails', () => {
    assert.equal(sha256(thumbnailPng(3, 'a')), sha256(thumbnailPng(3, 'a')));
    assert.equal(sha256(pngImage(64, 36, 9)), sha256(pngImage(64, 36, 9)));
    const hashes = new Set(Array.from({ length: 40 }, (_, i) => sha256(decodePng(thumbnailPng(i + 1)).pixels)));
    assert.equal(hashes.size, 40);
    assert.notEqual(sha256(thumbnailPng(1, 'a')), sha256(thumbnailPng(1, 'b')));
  });

  it('makes other sizes, from 1x1 to 1920x1080', () => {
    for (const [w, h] of [
      [1, 1],
      [64, 36],
      [333, 7],
      [1920, 1080],
    ] as const) {
      const { width, height } = decodePng(pngImage(w, h, 5));
      assert.deepEqual([width, height], [w, h]);
    }
    assert.throws(() => pngImage(0, 10, 1), RangeError);
    assert.throws(() => pngImage(10, 10.5, 1), RangeError);
    assert.throws(() => pngImage(10, 10, 1.5), RangeError);
    assert.throws(() => encodePng(2, 2, new Uint8Array(11)), RangeError);
  });

  it('encodes exactly the pixels it is given, with every filter type in use', () => {
    // Noise, planes, products and blocks make the encoder pick each of the five filters somewhere.
    const [w, h] = [61, 47];
    const images = [
      (x: number, y: number, k: number) => (x * 7919 + y * y * 31 + k * 13) ^ ((x * y) >> 2),
      (x: number, y: number, k: number) => 3 * x + 5 * y + k * 40,
      (x: number, y: number, k: number) => (x * y) >> (k + 1),
      (x: number, y: number, k: number) => ((x >> 3) * 50 + (y >> 3) * 90 + k * 20) ^ (x % 3),
      (x: number, y: number) => (x > y ? 200 : 10) + ((x * 3) % 7),
    ];
    const sources = images.map((image) => new Uint8Array(w * h * 3).map((_, i) => image(Math.floor(i / 3) % w, Math.floor(i / 3 / w), i % 3) & 0xff));
    // Noisy rows alternating with rows of the exact mean of left and upper neighbours: where Average wins.
    const averaged = new Uint8Array(w * h * 3);
    averaged.forEach((_, i) => {
      const left = i % (w * 3) >= 3 ? averaged[i - 3]! : 0;
      const up = i >= w * 3 ? averaged[i - w * 3]! : 0;
      averaged[i] = Math.floor(i / (w * 3)) % 2 === 0 ? (i * 7919) % 251 : (left + up) >> 1;
    });
    sources.push(averaged);
    const filters = new Set<number>();
    for (const pixels of sources) {
      const decoded = decodePng(encodePng(w, h, pixels));
      assert.deepEqual(decoded.pixels, pixels);
      decoded.filters.forEach((f) => filters.add(f));
    }
    assert.deepEqual([...filters].sort(), [0, 1, 2, 3, 4]);
  });

  it('the transient placeholder is a grey 120x68 image', () => {
    const { width, height, pixels } = decodePng(transientThumbnailPng());
    assert.deepEqual([width, height], [120, 68]);
    for (let i = 0; i < pixels.length; i += 3) assert.ok(pixels[i] === pixels[i + 1] && pixels[i] === pixels[i + 2]);
    assert.equal(sha256(transientThumbnailPng()), sha256(transientThumbnailPng()));
  });

  it('decodes the same in Python (stdlib zlib/struct only)', { skip: !hasPython && 'python3 not installed' }, () => {
    for (const png of [thumbnailPng(11, 'shot list'), pngImage(50, 20, 2), transientThumbnailPng()]) {
      const run = spawnSync('python3', ['-c', pythonPngCheck], { input: png, encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      const { width, height, pixels } = decodePng(png);
      assert.equal(run.stdout.trim(), `${width} ${height} ${sha256(pixels)}`);
    }
  });
});

describe('WAV', () => {
  it('has a PCM 16-bit stereo 48 kHz header whose sizes match the bytes', async () => {
    const file = wavAudio(2.5, 4);
    const bytes = await readMedia(file);
    assert.equal(file.size, 44 + 2.5 * 48_000 * 4);
    assert.equal(bytes.length, file.size);
    assert.equal(file.contentType, 'audio/wav');
    assert.match(file.name, /\.wav$/);
    assert.equal(bytes.toString('latin1', 0, 4), 'RIFF');
    assert.equal(bytes.readUInt32LE(4), bytes.length - 8);
    assert.equal(bytes.toString('latin1', 8, 16), 'WAVEfmt ');
    assert.equal(bytes.readUInt32LE(16), 16);
    assert.equal(bytes.readUInt16LE(20), 1, 'PCM');
    assert.equal(bytes.readUInt16LE(22), 2, 'channels');
    assert.equal(bytes.readUInt32LE(24), 48_000, 'sample rate');
    assert.equal(bytes.readUInt32LE(28), 192_000, 'byte rate');
    assert.equal(bytes.readUInt16LE(32), 4, 'block align');
    assert.equal(bytes.readUInt16LE(34), 16, 'bits');
    assert.equal(bytes.toString('latin1', 36, 40), 'data');
    assert.equal(bytes.readUInt32LE(40), bytes.length - 44);
  });

  it('holds a tone on the left and pips on the right, fading in from silence', async () => {
    const bytes = await readMedia(wavAudio(2, 1));
    const sample = (frame: number, channel: 0 | 1): number => bytes.readInt16LE(44 + frame * 4 + channel * 2);
    assert.equal(sample(0, 0), 0);
    let peak = 0;
    for (let n = 1000; n < 2000; n++) peak = Math.max(peak, Math.abs(sample(n, 0)));
    assert.ok(peak > 9000 && peak <= 9831, `left peak ${peak}`);
    assert.notEqual(sample(48_000 + 3000, 1), 0, 'pip at the start of second 1');
    assert.equal(sample(48_000 + 24_000, 1), 0, 'silence between pips');
  });

  it('streams the several-MiB file in chunks, deterministically', async () => {
    const file = wavAudio(30, 2);
    assert.equal(file.size, 5_760_044);
    const digest = async (): Promise<string> => {
      const source = file.open();
      assert.ok(!Buffer.isBuffer(source), 'large audio is a stream');
      const hash = createHash('sha256');
      let total = 0;
      for await (const chunk of source) {
        assert.ok(chunk.length <= 192_000, `chunk of ${chunk.length} bytes`);
        hash.update(chunk);
        total += chunk.length;
      }
      assert.equal(total, file.size);
      return hash.digest('hex');
    };
    assert.equal(await digest(), await digest());
  });

  it('differs between seeds and rejects bad lengths', async () => {
    assert.notEqual(sha256(await readMedia(wavAudio(1, 1))), sha256(await readMedia(wavAudio(1, 2))));
    assert.throws(() => wavAudio(0, 1), RangeError);
    assert.throws(() => wavAudio(Number.NaN, 1), RangeError);
    assert.throws(() => wavAudio(30_000, 1), RangeError, 'over 4 GiB');
  });
});

describe('PDF', () => {
  /** Checks the structure a reader relies on and returns the text as latin1. */
  function checkPdf(pdf: Buffer): string {
    const text = pdf.toString('latin1');
    assert.ok(text.startsWith('%PDF-1.4\n'));
    assert.ok(text.endsWith('%%EOF\n'));
    const startxref = Number(/startxref\n(\d+)\n%%EOF\n$/.exec(text)?.[1]);
    assert.equal(text.slice(startxref, startxref + 5), 'xref\n', 'startxref points at the xref table');
    const [, first, count] = /^xref\n(\d+) (\d+)\n/.exec(text.slice(startxref)) ?? [];
    assert.equal(first, '0');
    const entries = text.slice(startxref).split('\n').slice(2, 2 + Number(count));
    assert.equal(entries[0], '0000000000 65535 f ');
    entries.slice(1).forEach((entry, i) => {
      assert.match(entry, /^\d{10} 00000 n $/);
      const offset = Number(entry.slice(0, 10));
      assert.ok(text.startsWith(`${i + 1} 0 obj\n`, offset), `object ${i + 1} at ${offset}`);
    });
    assert.match(text, new RegExp(`/Size ${count} `));
    for (const m of text.matchAll(/<< \/Length (\d+) >>\nstream\n/g)) {
      const start = m.index + m[0].length;
      assert.equal(text.slice(start + Number(m[1]), start + Number(m[1]) + 10), '\nendstream', 'stream /Length');
    }
    return text;
  }

  it('is a valid one-page PDF with the title and lines as text', () => {
    const text = checkPdf(pdfDocument('Notes (sq010)', ['First line', 'Price: 5 \\ 6 – café']));
    assert.match(text, /\/Count 1 /);
    assert.ok(text.includes('(Notes \\(sq010\\)) Tj'));
    assert.ok(text.includes('(First line) Tj'));
    assert.ok(text.includes('(Price: 5 \\\\ 6 ? caf\\351) Tj'), 'backslash escaped, en dash outside Latin-1, é as octal');
    assert.ok(text.includes('/Title (Notes \\(sq010\\))'));
  });

  it('wraps long lines and paginates, and is deterministic', () => {
    const lines = Array.from({ length: 120 }, (_, i) => `line ${i} `.repeat(i % 4 === 0 ? 20 : 1));
    const pdf = pdfDocument('Long', lines);
    const text = checkPdf(pdf);
    const pages = Number(/\/Count (\d+) /.exec(text)?.[1]);
    assert.ok(pages >= 3, `${pages} pages`);
    assert.equal([...text.matchAll(/\/Type \/Page /g)].length, pages);
    for (const m of text.matchAll(/\((.*)\) Tj/g)) assert.ok(m[1]!.length <= 100, 'wrapped');
    assert.equal(sha256(pdfDocument('Long', lines)), sha256(pdf));
    checkPdf(pdfDocument('Empty', []));
  });
});

describe('text documents', () => {
  it('writes UTF-8 lines, CSV with quoting, and a CMX 3600 EDL', () => {
    assert.equal(textDocument(['a', 'é']).toString('utf8'), 'a\né\n');
    const csv = csvDocument([['code', 'description'], ['SH010', 'says "hi", twice'], ['SH020', 3]]);
    assert.equal(csv.toString(), 'code,description\r\nSH010,"says ""hi"", twice"\r\nSH020,3\r\n');
    const edl = edlDocument('SQ010 cut', [
      { reel: 'SH010', clip: 'sh010_comp_v003.mov', frames: 48, sourceIn: 0 },
      { reel: 'long reel name', clip: 'sh020.mov', frames: 30 },
    ]).toString();
    assert.equal(
      edl,
      [
        'TITLE: SQ010 cut',
        'FCM: NON-DROP FRAME',
        '',
        '001  SH010    V     C        00:00:00:00 00:00:02:00 01:00:00:00 01:00:02:00',
        '* FROM CLIP NAME: sh010_comp_v003.mov',
        '',
        '002  long_ree V     C        00:00:41:17 00:00:42:23 01:00:02:00 01:00:03:06',
        '* FROM CLIP NAME: sh020.mov',
        '',
        '',
      ].join('\n'),
    );
  });
});

describe('fixture movies', () => {
  /** Top-level ISO BMFF boxes; their sizes must add up to the file exactly. */
  function boxes(bytes: Buffer): string[] {
    const types: string[] = [];
    let at = 0;
    while (at < bytes.length) {
      let size = bytes.readUInt32BE(at);
      if (size === 1) size = Number(bytes.readBigUInt64BE(at + 8));
      assert.ok(size >= 8, `box size ${size} at ${at}`);
      types.push(bytes.toString('latin1', at + 4, at + 8));
      at += size;
    }
    assert.equal(at, bytes.length, 'boxes end at the end of the file');
    return types;
  }

  for (const name of fixtureMovieNames) {
    it(`${name} is a small, well-formed movie`, async () => {
      const file = fixtureMovie(name);
      assert.ok(existsSync(join(mediaDir, file.name)));
      assert.ok(file.size > 1000 && file.size < 60_000, `${file.name} is ${file.size} bytes`);
      const bytes = await readMedia(file);
      assert.equal(bytes.length, file.size);
      assert.equal(bytes.toString('latin1', 4, 8), 'ftyp');
      const brand = bytes.toString('latin1', 8, 12);
      const types = boxes(bytes);
      assert.ok(types.indexOf('moov') > 0 && types.indexOf('moov') < types.indexOf('mdat'), `moov before mdat (faststart): ${types.join(',')}`);
      if (file.name.endsWith('.mov')) {
        assert.equal(brand, 'qt  ');
        assert.equal(file.contentType, 'video/quicktime');
      } else {
        assert.equal(brand, 'isom');
        assert.equal(file.contentType, 'video/mp4');
      }
      assert.ok(bytes.includes('avc1'), 'H.264 track');
      assert.deepEqual(readFileSync(join(mediaDir, file.name)), bytes);
    });
  }
});
