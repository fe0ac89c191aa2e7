import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { csvDocument, pdfDocument, textDocument, thumbnailPng } from '../src/sandbox/media.ts';
import { looksLikeText, TEXT_SAMPLE_BYTES } from '../src/shared/text-signature.ts';

// A "movie" that is plain text is flagged before it goes to a Version (src/shared/text-signature.ts, run by the
// pages): notes and lists are text; real movies, images, PDFs and audio are not, whatever their start.

const head = (bytes: Buffer) => bytes.subarray(0, TEXT_SAMPLE_BYTES);
const media = (name: string) => readFileSync(new URL(`../src/sandbox/media/${name}`, import.meta.url));

test('notes, lists and other text are text, in any script, a character cut by the sample included', () => {
  assert.equal(looksLikeText(head(textDocument(['Client notes for sh020', '- warmer grade', '- slower camera']))), true);
  assert.equal(looksLikeText(head(csvDocument([['shot', 'cut_in'], ['sh010', 1001]]))), true);
  assert.equal(looksLikeText(Buffer.from('Notes de revue : étalonnage plus chaud\r\n\tplan 12 — 日本語\f')), true);
  // "é" is two bytes in UTF-8: a sample ending between them is still text.
  assert.equal(looksLikeText(Buffer.from('café').subarray(0, 4)), true);
});

test('movies, images, PDFs, audio and empty files are not text', () => {
  for (const name of ['comp.mp4', 'playblast.mov', 'turntable.mp4']) assert.equal(looksLikeText(head(media(name))), false, name);
  assert.equal(looksLikeText(head(thumbnailPng(7))), false, 'PNG');
  assert.equal(looksLikeText(head(pdfDocument('brief', ['line']))), false, 'PDF');
  // A WAV's RIFF header: its size field and the format's zeros come within the first bytes.
  assert.equal(looksLikeText(Buffer.from('RIFF\x24\x00\x01\x00WAVEfmt ', 'latin1')), false, 'WAV');
  assert.equal(looksLikeText(Buffer.alloc(0)), false, 'empty');
  // Latin-1 text is not valid UTF-8, and a lone control byte is binary: not flagged (a warning must not cry wolf).
  assert.equal(looksLikeText(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x61])), false);
  assert.equal(looksLikeText(Buffer.from('abc\u0001def')), false);
});
