import { createReadStream, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { constants as zlibConstants, crc32, deflateSync } from 'node:zlib';
import { projectRoot } from '../paths.ts';

// Real, small, deterministic media for the sandbox seed: the same inputs give the same bytes on every start,
// so seeded checksums and sizes stay stable. Everything is generated here except the movies, which are
// committed fixtures (see media/README.md) because encoding H.264 in code is not sensible.

export interface MediaFile {
  name: string;
  contentType: string;
  /** Exact byte length, known before any bytes are produced (uploads and Content-Length need it up front). */
  size: number;
  /** A fresh Buffer or stream of the bytes on every call. */
  open(): NodeJS.ReadableStream | Buffer;
}

/** Collects a MediaFile's bytes (tests, small files; avoid for the large audio file). */
export async function readMedia(file: MediaFile): Promise<Buffer> {
  const source = file.open();
  if (Buffer.isBuffer(source)) return source;
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

// ---------------------------------------------------------------------------------------------------------
// Seeded numbers

/** 32-bit integer mix of (seed, salt): cheap, stable, and spreads neighbouring seeds far apart. */
function hash32(seed: number, salt: number): number {
  let h = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(salt + 1, 0x85ebca77)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A number in [0, 1) from (seed, salt). */
function unit(seed: number, salt: number): number {
  return hash32(seed, salt) / 2 ** 32;
}

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
}

// ---------------------------------------------------------------------------------------------------------
// PNG

const pngSignature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const maxPngSide = 8192;

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  // The CRC covers the type and the data, not the length.
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))), 0);
  return Buffer.concat([head, data, crc]);
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * Encodes 8-bit RGB pixels (row-major, 3 bytes a pixel) as a PNG. Each row gets the filter with the smallest
 * sum of absolute residuals (the usual heuristic), which turns gradients into long runs of equal bytes.
 */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`bad PNG size ${width}x${height}`);
  }
  const stride = width * 3;
  if (rgb.length !== stride * height) throw new RangeError(`expected ${stride * height} bytes, got ${rgb.length}`);
  const raw = Buffer.alloc(height * (stride + 1));
  const trial = [0, 1, 2, 3, 4].map(() => new Uint8Array(stride));
  const [none, sub, up, average, paethed] = trial as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  const cost = (v: number): number => (v < 128 ? v : 256 - v);
  for (let y = 0; y < height; y++) {
    const row = y * stride;
    let [s0, s1, s2, s3, s4] = [0, 0, 0, 0, 0];
    // One pass computes all five candidates; this loop is most of the encoding time.
    for (let i = 0; i < stride; i++) {
      const x = rgb[row + i]!;
      const a = i >= 3 ? rgb[row + i - 3]! : 0;
      const b = y > 0 ? rgb[row - stride + i]! : 0;
      const c = i >= 3 && y > 0 ? rgb[row - stride + i - 3]! : 0;
      none[i] = x;
      sub[i] = (x - a) & 0xff;
      up[i] = (x - b) & 0xff;
      average[i] = (x - ((a + b) >> 1)) & 0xff;
      paethed[i] = (x - paeth(a, b, c)) & 0xff;
      s0 += cost(none[i]!);
      s1 += cost(sub[i]!);
      s2 += cost(up[i]!);
      s3 += cost(average[i]!);
      s4 += cost(paethed[i]!);
    }
    const score = [s0, s1, s2, s3, s4];
    const best = score.indexOf(Math.min(...score)); // ties go to the lower filter type
    const at = y * (stride + 1);
    raw[at] = best;
    raw.set(trial[best]!, at + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  // compression, filter method and interlace stay 0
  // Node's zlib (Chromium's fork) hashes with CPU-specific instructions, so the default strategies can emit
  // different bytes on different machines. Z_RLE uses no hash (it only matches the previous byte), so the file
  // should depend only on the pixels and the zlib version; the price is about twice the size (~47 KB a thumbnail).
  const idat = deflateSync(raw, { level: 9, strategy: zlibConstants.Z_RLE });
  return Buffer.concat([pngSignature, pngChunk('IHDR', ihdr), pngChunk('IDAT', idat), pngChunk('IEND', Buffer.alloc(0))]);
}

type Rgb = [number, number, number];

/** HSL (all in [0, 1]) to 0..255 RGB. */
function hsl(h: number, s: number, l: number): Rgb {
  const c = (1 - Math.abs(2 * l - 1)) * s;
  const hp = (((h % 1) + 1) % 1) * 6;
  const x = c * (1 - Math.abs((hp % 2) - 1));
  const m = l - c / 2;
  const [r, g, b] =
    hp < 1 ? [c, x, 0] : hp < 2 ? [x, c, 0] : hp < 3 ? [0, c, x] : hp < 4 ? [0, x, c] : hp < 5 ? [x, 0, c] : [c, 0, x];
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
}

/** A 5x7 bitmap font for labels (upper case, digits, a little punctuation); lower case is drawn upper case. */
const glyphRows: Record<string, string> = {
  A: '.###. #...# #...# ##### #...# #...# #...#',
  B: '####. #...# #...# ####. #...# #...# ####.',
  C: '.###. #...# #.... #.... #.... #...# .###.',
  D: '####. #...# #...# #...# #...# #...# ####.',
  E: '##### #.... #.... ####. #.... #.... #####',
  F: '##### #.... #.... ####. #.... #.... #....',
  G: '.###. #...# #.... #.### #...# #...# .####',
  H: '#...# #...# #...# ##### #...# #...# #...#',
  I: '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  J: '..### ...#. ...#. ...#. ...#. #..#. .##..',
  K: '#...# #..#. #.#.. ##... #.#.. #..#. #...#',
  L: '#.... #.... #.... #.... #.... #.... #####',
  M: '#...# ##.## #.#.# #.#.# #...# #...# #...#',
  N: '#...# #...# ##..# #.#.# #..## #...# #...#',
  O: '.###. #...# #...# #...# #...# #...# .###.',
  P: '####. #...# #...# ####. #.... #.... #....',
  Q: '.###. #...# #...# #...# #.#.# #..#. .##.#',
  R: '####. #...# #...# ####. #.#.. #..#. #...#',
  S: '.#### #.... #.... .###. ....# ....# ####.',
  T: '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  U: '#...# #...# #...# #...# #...# #...# .###.',
  V: '#...# #...# #...# #...# #...# .#.#. ..#..',
  W: '#...# #...# #...# #.#.# #.#.# #.#.# .#.#.',
  X: '#...# #...# .#.#. ..#.. .#.#. #...# #...#',
  Y: '#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..',
  Z: '##### ....# ...#. ..#.. .#... #.... #####',
  '0': '.###. #...# #..## #.#.# ##..# #...# .###.',
  '1': '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.',
  '2': '.###. #...# ....# ...#. ..#.. .#... #####',
  '3': '####. ....# ....# .###. ....# ....# ####.',
  '4': '...#. ..##. .#.#. #..#. ##### ...#. ...#.',
  '5': '##### #.... ####. ....# ....# #...# .###.',
  '6': '.###. #.... #.... ####. #...# #...# .###.',
  '7': '##### ....# ...#. ..#.. .#... .#... .#...',
  '8': '.###. #...# #...# .###. #...# #...# .###.',
  '9': '.###. #...# #...# .#### ....# ....# .###.',
  '-': '..... ..... ..... ##### ..... ..... .....',
  _: '..... ..... ..... ..... ..... ..... #####',
  '.': '..... ..... ..... ..... ..... .##.. .##..',
  ':': '..... .##.. .##.. ..... .##.. .##.. .....',
  '/': '....# ....# ...#. ..#.. .#... #.... #....',
  '?': '.###. #...# ....# ...#. ..#.. ..... ..#..',
  ' ': '..... ..... ..... ..... ..... ..... .....',
};

function glyph(ch: string): string {
  return (glyphRows[ch.toUpperCase()] ?? glyphRows['?']!).replaceAll(' ', '');
}

class Canvas {
  readonly width: number;
  readonly height: number;
  readonly pixels: Uint8Array;

  constructor(width: number, height: number) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new RangeError(`bad image size ${width}x${height}`);
    }
    if (width > maxPngSide || height > maxPngSide) throw new RangeError(`image larger than ${maxPngSide}px a side`);
    this.width = width;
    this.height = height;
    this.pixels = new Uint8Array(width * height * 3);
  }

  set(x: number, y: number, [r, g, b]: Rgb): void {
    const i = (y * this.width + x) * 3;
    this.pixels[i] = r;
    this.pixels[i + 1] = g;
    this.pixels[i + 2] = b;
  }

  /** Moves the pixel `amount` of the way towards `to` (clipped to the canvas). */
  blend(x: number, y: number, to: Rgb, amount: number): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 3;
    for (let k = 0; k < 3; k++) {
      const from = this.pixels[i + k]!;
      this.pixels[i + k] = Math.round(from + (to[k]! - from) * amount);
    }
  }

  fillRect(x0: number, y0: number, w: number, h: number, to: Rgb, amount: number): void {
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) this.blend(x, y, to, amount);
  }

  /** Draws text with the bitmap font, each font pixel a `scale`-sized square. */
  text(x0: number, y0: number, text: string, scale: number, colour: Rgb): void {
    [...text].forEach((ch, n) => {
      const bits = glyph(ch);
      for (let row = 0; row < 7; row++) {
        for (let col = 0; col < 5; col++) {
          if (bits[row * 5 + col] === '#') this.fillRect(x0 + (n * 6 + col) * scale, y0 + row * scale, scale, scale, colour, 1);
        }
      }
    });
  }
}

const white: Rgb = [255, 255, 255];
const black: Rgb = [0, 0, 0];

/**
 * The seeded picture: a diagonal two-colour gradient, one of five patterns and a disc in the complementary
 * colour. Hues step by the golden ratio so consecutive seeds (Versions seeded in a row) look clearly apart.
 */
function drawPicture(width: number, height: number, seed: number): Canvas {
  checkSeed(seed);
  const canvas = new Canvas(width, height);
  const hue = (((seed * 0.6180339887498949) % 1) + 1) % 1;
  const from = hsl(hue, 0.65, 0.32);
  const to = hsl(hue + 0.12, 0.7, 0.62);
  const accent = hsl(hue + 0.5, 0.75, 0.55);
  const pattern = ((seed % 5) + 5) % 5; // not hashed: neighbouring seeds always get different patterns
  // Sizes scale with the image so a seed looks the same as a thumbnail and as a larger still.
  const cell = Math.max(4, Math.round(Math.min(width, height) / 9));
  const cx = width * (0.25 + 0.5 * unit(seed, 2));
  const cy = height * (0.25 + 0.5 * unit(seed, 3));
  const radius = Math.min(width, height) * (0.18 + 0.12 * unit(seed, 4));
  const pixels = canvas.pixels;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dx = x - cx;
      const dy = y - cy;
      const distance = Math.sqrt(dx * dx + dy * dy);
      const gx = (x % cell) - cell / 2;
      const gy = (y % cell) - cell / 2;
      const on =
        pattern === 0
          ? Math.floor(distance / (cell / 2)) % 2 === 0 // rings
          : pattern === 1
            ? Math.floor((x + y) / (cell / 2)) % 2 === 0 // diagonal stripes
            : pattern === 2
              ? (Math.floor(x / cell) + Math.floor(y / cell)) % 2 === 0 // checker
              : pattern === 3
                ? gx * gx + gy * gy < (cell * cell) / 10 // dots
                : Math.floor(y / (cell / 2)) % 2 === 0; // bands
      // Gradient, then lifted towards white where the pattern is on, then mostly covered by the disc.
      const t = (0.6 * x) / width + (0.4 * y) / height;
      const lift = on ? 0.16 : 0;
      const cover = distance < radius ? 0.8 : 0;
      const at = (y * width + x) * 3;
      for (let k = 0; k < 3; k++) {
        let v = from[k]! + (to[k]! - from[k]!) * t;
        v += (255 - v) * lift;
        v += (accent[k]! - v) * cover;
        pixels[at + k] = Math.round(v);
      }
    }
  }
  return canvas;
}

/** A seeded RGB image of any size up to 8192x8192 (e.g. stills, reference images). */
export function pngImage(width: number, height: number, seed: number): Buffer {
  return encodePng(width, height, drawPicture(width, height, seed).pixels);
}

export const thumbnailWidth = 480;
export const thumbnailHeight = 270;

/**
 * A 480x270 thumbnail for a seeded item, with an optional label (e.g. the Version code) in a dark band at the
 * bottom; labels too long for the width are cut, characters outside the bitmap font are drawn as '?'.
 */
export function thumbnailPng(seed: number, label?: string): Buffer {
  const canvas = drawPicture(thumbnailWidth, thumbnailHeight, seed);
  if (label !== undefined && label !== '') {
    const margin = 12;
    const scale = 3;
    const fits = Math.floor((thumbnailWidth - 2 * margin + scale) / (6 * scale));
    const text = label.length > fits ? label.slice(0, fits - 1) + '.' : label;
    const band = 7 * scale + 2 * margin;
    canvas.fillRect(0, thumbnailHeight - band, thumbnailWidth, band, black, 0.55);
    canvas.text(margin, thumbnailHeight - band + margin, text, scale, white);
  }
  return encodePng(canvas.width, canvas.height, canvas.pixels);
}

let transient: Buffer | undefined;

/**
 * The grey "thumbnail pending" image ShotGrid serves while an uploaded thumbnail is being processed:
 * flat grey with three darker dots.
 */
export function transientThumbnailPng(): Buffer {
  if (transient === undefined) {
    const width = 120;
    const height = 68;
    const canvas = new Canvas(width, height);
    canvas.fillRect(0, 0, width, height, [200, 200, 200], 1);
    for (const dotX of [48, 60, 72]) {
      for (let y = 30; y < 38; y++) for (let x = dotX - 4; x < dotX + 4; x++) canvas.set(x, y, [150, 150, 150]);
    }
    transient = encodePng(width, height, canvas.pixels);
  }
  return Buffer.from(transient);
}

// ---------------------------------------------------------------------------------------------------------
// WAV

export const wavSampleRate = 48_000;
const wavChannels = 2;
const wavBytesPerFrame = wavChannels * 2; // 16-bit samples
const wavHeaderSize = 44;
/** Musical-ish integer frequencies: integer Hz keeps the phase exact (see sineTable). */
const toneHz = [220, 247, 262, 294, 330, 349, 392, 440, 494, 523, 587, 659];

let sineTable: Float64Array | undefined;

/** sin over one second of samples: with integer Hz, sample n of a tone is sineTable[(f * n) % rate], exactly. */
function sine(): Float64Array {
  if (sineTable === undefined) {
    sineTable = new Float64Array(wavSampleRate);
    for (let i = 0; i < wavSampleRate; i++) sineTable[i] = Math.sin((2 * Math.PI * i) / wavSampleRate);
  }
  return sineTable;
}

function wavHeader(dataBytes: number): Buffer {
  const h = Buffer.alloc(wavHeaderSize);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(wavHeaderSize - 8 + dataBytes, 4);
  h.write('WAVE', 8, 'latin1');
  h.write('fmt ', 12, 'latin1');
  h.writeUInt32LE(16, 16); // fmt chunk size for plain PCM
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(wavChannels, 22);
  h.writeUInt32LE(wavSampleRate, 24);
  h.writeUInt32LE(wavSampleRate * wavBytesPerFrame, 28); // byte rate
  h.writeUInt16LE(wavBytesPerFrame, 32); // block align
  h.writeUInt16LE(16, 34); // bits per sample
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/**
 * PCM 16-bit stereo 48 kHz: a steady seeded tone on the left, a short pip at every whole second on the right
 * (so position is audible), with 10 ms fades at both ends against clicks. `seconds` may be fractional
 * (rounded to whole samples). Streamed in one-second chunks, so a 30 s / 5.5 MiB file costs ~200 KB of memory.
 */
export function wavAudio(seconds: number, seed: number, name = `tone_${seed}_${seconds}s.wav`): MediaFile {
  checkSeed(seed);
  const frames = Math.round(seconds * wavSampleRate);
  const dataBytes = frames * wavBytesPerFrame;
  if (!Number.isFinite(seconds) || frames < 1 || wavHeaderSize - 8 + dataBytes > 0xffff_ffff) {
    throw new RangeError(`bad WAV length ${seconds}s`);
  }
  const left = toneHz[hash32(seed, 5) % toneHz.length]!;
  const right = toneHz[(toneHz.indexOf(left) + 4) % toneHz.length]!; // a fifth-ish above: clearly a different pitch
  const fade = wavSampleRate / 100;
  const pip = wavSampleRate * 0.12;

  function* chunks(): Generator<Buffer> {
    yield wavHeader(dataBytes);
    const table = sine();
    for (let start = 0; start < frames; start += wavSampleRate) {
      const count = Math.min(wavSampleRate, frames - start);
      const chunk = Buffer.alloc(count * wavBytesPerFrame);
      for (let i = 0; i < count; i++) {
        const n = start + i;
        const envelope = Math.min(1, n / fade, (frames - 1 - n) / fade);
        // Integer-Hz tones repeat every second, so the position within the second is the whole phase.
        const t = n % wavSampleRate;
        const l = 0.3 * envelope * table[(left * t) % wavSampleRate]!;
        const pipEnvelope = t < pip ? Math.min(1, t / 240, (pip - t) / 240) : 0;
        const r = 0.3 * envelope * pipEnvelope * table[(right * t) % wavSampleRate]!;
        chunk.writeInt16LE(Math.round(l * 32767), i * 4);
        chunk.writeInt16LE(Math.round(r * 32767), i * 4 + 2);
      }
      yield chunk;
    }
  }

  return {
    name,
    contentType: 'audio/wav',
    size: wavHeaderSize + dataBytes,
    open: () => Readable.from(chunks(), { objectMode: false }),
  };
}

// ---------------------------------------------------------------------------------------------------------
// PDF

const pdfLinesPerPage = 50;
const pdfWrapAt = 90;

/** A PDF string literal body: parentheses and backslashes escaped, Latin-1 as octal, anything else as '?'. */
function pdfString(text: string): string {
  let out = '';
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (ch === '(' || ch === ')' || ch === '\\') out += '\\' + ch;
    else if (c >= 0x20 && c <= 0x7e) out += ch;
    else if (c === 0x09) out += ' ';
    else if (c >= 0xa0 && c <= 0xff) out += '\\' + c.toString(8).padStart(3, '0');
    else out += '?';
  }
  return out;
}

/** Breaks a line at spaces (or hard, for long words) so it fits the page at 10 pt Helvetica. */
function wrap(line: string): string[] {
  const out: string[] = [];
  let rest = line.trimEnd();
  while (rest.length > pdfWrapAt) {
    const space = rest.lastIndexOf(' ', pdfWrapAt);
    const cut = space > 0 ? space : pdfWrapAt;
    out.push(rest.slice(0, cut));
    rest = rest.slice(cut).trimStart();
  }
  out.push(rest);
  return out;
}

/**
 * A hand-built PDF 1.4: A4 pages, the title in 16 pt and the lines in 10 pt Helvetica (a standard font, so
 * nothing is embedded), an Info dictionary with the title, and an exact xref table. No dates, so the bytes
 * depend only on the arguments.
 */
export function pdfDocument(title: string, lines: readonly string[]): Buffer {
  const wrapped = lines.flatMap(wrap);
  const pages: string[][] = [];
  for (let i = 0; i < wrapped.length; i += pdfLinesPerPage) pages.push(wrapped.slice(i, i + pdfLinesPerPage));
  if (pages.length === 0) pages.push([]);

  // Objects 1-4 are fixed; each page then takes a page object and its content stream.
  const pageObject = (k: number): number => 5 + 2 * k;
  const bodies: string[] = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    `<< /Type /Pages /Kids [${pages.map((_, k) => `${pageObject(k)} 0 R`).join(' ')}] /Count ${pages.length} >>`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>',
    `<< /Title (${pdfString(title)}) /Producer (ami-transfer sandbox) >>`,
  ];
  pages.forEach((pageLines, k) => {
    const heading = pages.length > 1 ? `${title} (${k + 1}/${pages.length})` : title;
    const ops = ['BT', '/F1 16 Tf', '72 770 Td', `(${pdfString(heading)}) Tj`, '/F1 10 Tf', '14 TL', '0 -30 Td'];
    pageLines.forEach((line, i) => {
      if (i > 0) ops.push('T*');
      ops.push(`(${pdfString(line)}) Tj`);
    });
    ops.push('ET');
    const stream = ops.join('\n');
    const resources = '/Resources << /Font << /F1 3 0 R >> >>';
    bodies.push(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] ${resources} /Contents ${pageObject(k) + 1} 0 R >>`);
    // Every character is Latin-1 after pdfString, so string length is byte length.
    bodies.push(`<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`);
  });

  // The second line's high bytes tell transfer tools the file is binary (PDF convention).
  let out = '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n';
  const offsets: number[] = [];
  bodies.forEach((body, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = out.length;
  // Each entry is exactly 20 bytes: 10-digit offset, 5-digit generation, type, space + newline.
  out += `xref\n0 ${bodies.length + 1}\n0000000000 65535 f \n`;
  for (const offset of offsets) out += `${String(offset).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${bodies.length + 1} /Root 1 0 R /Info 4 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

// ---------------------------------------------------------------------------------------------------------
// Text documents

/** UTF-8 text, one line each, '\n' endings and a final newline. */
export function textDocument(lines: readonly string[]): Buffer {
  return Buffer.from(lines.map((line) => `${line}\n`).join(''), 'utf8');
}

/** RFC 4180 CSV: CRLF line ends; fields quoted only when they hold a comma, quote, line break or edge space. */
export function csvDocument(rows: readonly (readonly (string | number)[])[]): Buffer {
  const field = (value: string | number): string => {
    const s = String(value);
    return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  return Buffer.from(rows.map((row) => row.map(field).join(',') + '\r\n').join(''), 'utf8');
}

export interface EdlEvent {
  /** Source reel/tape name; CMX 3600 keeps 8 characters. */
  reel: string;
  /** Clip name written as a FROM CLIP NAME comment. */
  clip: string;
  /** Length in frames. */
  frames: number;
  /** Source in point in frames (default 1001 frames from 00:00:00:00, a common VFX start). */
  sourceIn?: number;
}

function timecode(frame: number, fps: number): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  const f = frame % fps;
  const s = Math.floor(frame / fps);
  return `${two(Math.floor(s / 3600))}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}:${two(f)}`;
}

/** A CMX 3600 EDL of cuts laid end to end from record 01:00:00:00 (non-drop-frame, integer fps). */
export function edlDocument(title: string, events: readonly EdlEvent[], fps = 24): Buffer {
  if (!Number.isInteger(fps) || fps < 1) throw new RangeError(`fps must be a positive integer, got ${fps}`);
  const lines = [`TITLE: ${title}`, 'FCM: NON-DROP FRAME', ''];
  let record = 3600 * fps;
  events.forEach((event, i) => {
    if (!Number.isInteger(event.frames) || event.frames < 1) throw new RangeError(`event ${i + 1} has no frames`);
    const sourceIn = event.sourceIn ?? 1001;
    const reel = event.reel.replaceAll(/\s/g, '_').slice(0, 8).padEnd(8);
    const times = [sourceIn, sourceIn + event.frames, record, record + event.frames].map((f) => timecode(f, fps));
    lines.push(`${String(i + 1).padStart(3, '0')}  ${reel} V     C        ${times.join(' ')}`);
    lines.push(`* FROM CLIP NAME: ${event.clip}`, '');
    record += event.frames;
  });
  return textDocument(lines);
}

// ---------------------------------------------------------------------------------------------------------
// Movies (committed fixtures)

/** Read from the source tree, whether the service runs from src/ or from dist/ (the build copies no media). */
export const mediaDir = join(projectRoot, 'src', 'sandbox', 'media');

const movies = {
  turntable: { file: 'turntable.mp4', contentType: 'video/mp4' },
  comp: { file: 'comp.mp4', contentType: 'video/mp4' },
  playblast: { file: 'playblast.mov', contentType: 'video/quicktime' },
} as const;

export type FixtureMovieName = keyof typeof movies;
export const fixtureMovieNames = Object.keys(movies) as FixtureMovieName[];

/** A committed movie: 320x180 H.264 at 24 fps; turntable and comp are MP4 (comp has AAC audio), playblast is a .mov. */
export function fixtureMovie(name: FixtureMovieName): MediaFile {
  const { file, contentType } = movies[name];
  const path = join(mediaDir, file);
  return { name: file, contentType, size: statSync(path).size, open: () => createReadStream(path) };
}
