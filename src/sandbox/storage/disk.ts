import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

// Bytes on disk: every body is streamed into a file while its MD5 is computed on the way, never held whole.

/** Big reads when copying between files: fewer syscalls and callbacks per GiB. */
export const fileChunkSize = 1024 * 1024;
/** Joining parts: file to file with no other work, so a larger buffer pays (one per completion in flight). */
const copyBufferSize = 4 * 1024 * 1024;

export interface WrittenFile {
  size: number;
  md5: Buffer;
}

/** A fresh file name under `dir`, unrelated to any key (keys never become paths). */
export function generatedPath(dir: string, prefix: string): string {
  return path.join(dir, `${prefix}-${randomBytes(12).toString('hex')}`);
}

/**
 * Streams `source` into a new file at `file` (which must not exist), counting bytes and computing the MD5.
 * The file is removed when the stream fails (e.g. the client went away mid-body).
 */
export async function writeStreamToFile(source: NodeJS.ReadableStream | Readable, file: string): Promise<WrittenFile> {
  const hash = createHash('md5');
  let size = 0;
  // A second 'data' listener beside the pipe: each chunk is hashed where it passes, no extra Transform stage.
  source.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    size += chunk.length;
  });
  try {
    await pipeline(source, createWriteStream(file, { flags: 'wx', highWaterMark: fileChunkSize }));
  } catch (error) {
    await removeQuietly(file);
    throw error;
  }
  return { size, md5: hash.digest() };
}

export async function writeBufferToFile(data: Buffer, file: string): Promise<WrittenFile> {
  await writeFile(file, data, { flag: 'wx' });
  return { size: data.length, md5: createHash('md5').update(data).digest() };
}

/** Copies the files one after another into a new file at `target` through one reused buffer; removes it on failure. */
export async function concatenateFiles(sources: readonly string[], target: string): Promise<void> {
  const buffer = Buffer.allocUnsafe(copyBufferSize);
  const out = await open(target, 'wx');
  try {
    for (const source of sources) {
      const input = await open(source, 'r');
      try {
        for (;;) {
          const { bytesRead } = await input.read(buffer, 0, buffer.length, null);
          if (bytesRead === 0) break;
          for (let offset = 0; offset < bytesRead; ) {
            offset += (await out.write(buffer, offset, bytesRead - offset)).bytesWritten;
          }
        }
      } finally {
        await input.close();
      }
    }
    await out.close();
  } catch (error) {
    await out.close().catch(() => undefined);
    await removeQuietly(target);
    throw error;
  }
}

export async function removeQuietly(file: string): Promise<void> {
  await rm(file, { force: true }).catch(() => undefined);
}
