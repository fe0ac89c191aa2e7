// Whether a file is an image a thumbnail can be made from, told by its first bytes (its signature), never by its
// name: `frame.png` may hold anything. Shared by the page (which refuses before anything starts) and the service
// (which checks the bytes as they stream through), so both decide alike. No imports: it runs as-is in a browser.

/** How many bytes from the start of a file are enough to recognise it. */
export const IMAGE_SIGNATURE_BYTES = 16;

/** The formats recognised, as people name them in messages. */
export const IMAGE_FORMATS_TEXT = 'PNG, JPEG, GIF, WebP, TIFF or BMP';

/** The image format the bytes start with ("PNG", "JPEG", …), or null when they start no image we know. */
export function imageFormatOf(head: Uint8Array): string | null {
  const startsWith = (offset: number, bytes: readonly number[]): boolean => bytes.every((byte, i) => head[offset + i] === byte);
  if (startsWith(0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'PNG';
  if (startsWith(0, [0xff, 0xd8, 0xff])) return 'JPEG';
  // GIF87a or GIF89a.
  if (startsWith(0, [0x47, 0x49, 0x46, 0x38]) && (startsWith(4, [0x37, 0x61]) || startsWith(4, [0x39, 0x61]))) return 'GIF';
  // A RIFF container whose form type is WEBP.
  if (startsWith(0, [0x52, 0x49, 0x46, 0x46]) && startsWith(8, [0x57, 0x45, 0x42, 0x50])) return 'WebP';
  // Little-endian (II*\0) or big-endian (MM\0*).
  if (startsWith(0, [0x49, 0x49, 0x2a, 0x00]) || startsWith(0, [0x4d, 0x4d, 0x00, 0x2a])) return 'TIFF';
  // "BM" alone starts too many things: the four reserved bytes after the file size must be zero as well.
  if (startsWith(0, [0x42, 0x4d]) && head.length >= 10 && startsWith(6, [0, 0, 0, 0])) return 'BMP';
  return null;
}
