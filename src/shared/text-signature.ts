// Whether a file chosen as a movie is plain text (notes.txt picked by mistake), told by its first bytes. Only a
// warning the user may override: Versions also take images, PDFs and QuickTime files of every atom order, and
// none of those reads as text. Shared by the page and the tests. No imports: it runs as-is in a browser.

/** How many bytes from the start of a file are read to decide. */
export const TEXT_SAMPLE_BYTES = 512;

/**
 * True when the bytes read as text: no NUL and no control character but tab, line feed, form feed and carriage
 * return, and valid UTF-8 (a sequence cut by the end of the sample is allowed). Container formats give themselves
 * away within their first bytes (an atom's size, a header's zeros); a PDF, text-like at its start, is not text.
 */
export function looksLikeText(head: Uint8Array): boolean {
  if (head.length === 0) return false;
  // "%PDF-": a document ShotGrid shows, whose first objects are often plain ASCII.
  if (head[0] === 0x25 && head[1] === 0x50 && head[2] === 0x44 && head[3] === 0x46 && head[4] === 0x2d) return false;
  let i = 0;
  while (i < head.length) {
    const byte = head[i]!;
    if (byte < 0x80) {
      if (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0c && byte !== 0x0d) return false;
      if (byte === 0x7f) return false;
      i += 1;
      continue;
    }
    // A UTF-8 lead byte and how many continuation bytes follow it.
    const follow = byte >= 0xc2 && byte <= 0xdf ? 1 : byte >= 0xe0 && byte <= 0xef ? 2 : byte >= 0xf0 && byte <= 0xf4 ? 3 : -1;
    if (follow < 0) return false;
    for (let k = 1; k <= follow; k++) {
      if (i + k >= head.length) return true;
      if ((head[i + k]! & 0xc0) !== 0x80) return false;
    }
    i += follow + 1;
  }
  return true;
}

/** Whether a chosen file reads as text by its first bytes; false when it can no longer be read (the upload says so). */
export async function fileIsText(file: Blob): Promise<boolean> {
  try {
    return looksLikeText(new Uint8Array(await file.slice(0, TEXT_SAMPLE_BYTES).arrayBuffer()));
  } catch {
    return false;
  }
}
