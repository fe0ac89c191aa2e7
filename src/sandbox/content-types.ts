import { extname } from 'node:path';

// Content types by file extension, as a site records them for uploads (browsers and clients send no type).
const byExtension: Record<string, string> = {
  '.mov': 'video/quicktime',
  '.mp4': 'video/mp4',
  '.m4v': 'video/mp4',
  '.avi': 'video/x-msvideo',
  '.mkv': 'video/x-matroska',
  '.webm': 'video/webm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.exr': 'image/x-exr',
  '.dpx': 'image/x-dpx',
  '.wav': 'audio/wav',
  '.mp3': 'audio/mpeg',
  '.pdf': 'application/pdf',
  '.txt': 'text/plain',
  '.csv': 'text/csv',
  '.edl': 'text/plain',
  '.json': 'application/json',
  '.zip': 'application/zip',
};

export function contentTypeFor(filename: string): string {
  return byExtension[extname(filename).toLowerCase()] ?? 'application/octet-stream';
}

/** Whether the first bytes are an image a thumbnail can be made from (PNG, JPEG, GIF, WebP, TIFF, BMP). */
export function looksLikeImage(head: Buffer): boolean {
  const startsWith = (bytes: number[], offset = 0): boolean => bytes.every((byte, i) => head[offset + i] === byte);
  return (
    startsWith([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) ||
    startsWith([0xff, 0xd8, 0xff]) ||
    startsWith([0x47, 0x49, 0x46, 0x38]) ||
    (startsWith([0x52, 0x49, 0x46, 0x46]) && startsWith([0x57, 0x45, 0x42, 0x50], 8)) ||
    startsWith([0x49, 0x49, 0x2a, 0x00]) ||
    startsWith([0x4d, 0x4d, 0x00, 0x2a]) ||
    (startsWith([0x42, 0x4d]) && head.length >= 10 && startsWith([0, 0, 0, 0], 6))
  );
}
