import { crc32 } from 'node:zlib';
import {
  centralDirectoryHeaderLength,
  encodeDataDescriptor,
  encodeEndRecords,
  encodeLocalFileHeader,
  writeCentralDirectoryHeader,
} from './zip-format.ts';
import type { ArchivePlan, PlannedEntry } from './zip-plan.ts';

// Writes a planned archive as a stream of chunks. It is an async generator rather than a Readable because the
// consumer pulls: nothing is read from a source until the consumer asks for the next chunk, so backpressure
// needs no code here, and `stream.pipeline(writeZipArchive(plan, open), response)` wires it to a socket (or
// `Readable.from(...)` makes it a Readable). A throw ends the stream with an error and the response is aborted;
// a consumer that stops early ends the generator, whose `for await` closes the open source.
//
// Source chunks go out as they came (no copy); the only per-chunk work is the running CRC-32 (native
// zlib.crc32) and the byte count. Memory is one header at a time, a 64 KiB batch of the central directory, and
// four bytes of CRC per entry until the central directory is written.

/** The bytes of one entry: a Readable, an async generator, or an array of chunks. */
export type EntrySource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
/** Called once per entry, in order, when the writer reaches it. */
export type OpenEntrySource = (entry: PlannedEntry) => EntrySource | Promise<EntrySource>;

/** A source gave more or fewer bytes than planned: the archive would be wrong, so it is not finished. */
export class ZipEntrySizeError extends Error {
  readonly entryIndex: number;
  readonly entryName: string;
  readonly plannedSize: number;
  /** Bytes received when the mismatch was seen (for a long source, including the chunk that went over). */
  readonly receivedSize: number;

  constructor(entry: PlannedEntry, receivedSize: number) {
    super(
      `zip entry ${entry.index} (${JSON.stringify(entry.name)}): source gave ${receivedSize > entry.size ? 'more than' : 'only'} ` +
        `${receivedSize} of its planned ${entry.size} bytes`,
    );
    this.name = 'ZipEntrySizeError';
    this.entryIndex = entry.index;
    this.entryName = entry.name;
    this.plannedSize = entry.size;
    this.receivedSize = receivedSize;
  }
}

const CENTRAL_DIRECTORY_BATCH_BYTES = 64 * 1024;

/**
 * Streams the archive `plan` describes, reading each entry's bytes from `openSource(entry)` in order. Yields
 * exactly `plan.totalSize` bytes, or throws: `ZipEntrySizeError` when a source's length differs from the plan
 * (before any excess byte is yielded), a source's own error as it is.
 */
export async function* writeZipArchive(plan: ArchivePlan, openSource: OpenEntrySource): AsyncGenerator<Uint8Array, void, undefined> {
  const crcs = new Uint32Array(plan.entries.length);
  let position = 0;
  // The previous entry's data descriptor, sent with the next local header: one write instead of two per entry
  // (each write is a system call; with many small files they add up).
  let descriptor: Buffer | null = null;
  for (const entry of plan.entries) {
    assertPosition(position, entry.localHeaderOffset, `local header of entry ${entry.index}`);
    const header = encodeLocalFileHeader(entry);
    yield descriptor === null ? header : Buffer.concat([descriptor, header], descriptor.length + header.length);
    descriptor = null;
    position += header.length;

    let crc = 0;
    let received = 0;
    for await (const chunk of await openSource(entry)) {
      if (!(chunk instanceof Uint8Array)) {
        throw new TypeError(`zip entry ${entry.index} (${JSON.stringify(entry.name)}): source must give bytes, got ${typeof chunk}`);
      }
      if (chunk.length === 0) continue;
      received += chunk.length;
      if (received > entry.size) throw new ZipEntrySizeError(entry, received);
      crc = crc32(chunk, crc);
      yield chunk;
    }
    if (received !== entry.size) throw new ZipEntrySizeError(entry, received);
    position += received;
    crcs[entry.index] = crc;

    descriptor = encodeDataDescriptor(entry, crc);
    position += descriptor.length;
  }
  if (descriptor !== null) yield descriptor;

  assertPosition(position, plan.centralDirectoryOffset, 'central directory');
  let batch = Buffer.alloc(CENTRAL_DIRECTORY_BATCH_BYTES);
  let used = 0;
  for (const entry of plan.entries) {
    const length = centralDirectoryHeaderLength(entry);
    if (used + length > batch.length) {
      if (used > 0) yield batch.subarray(0, used);
      position += used;
      // A new buffer each time: the consumer may still hold the one just yielded.
      batch = Buffer.alloc(Math.max(CENTRAL_DIRECTORY_BATCH_BYTES, length));
      used = 0;
    }
    used = writeCentralDirectoryHeader(batch, used, entry, crcs[entry.index]!);
  }
  if (used > 0) yield batch.subarray(0, used);
  position += used;

  assertPosition(position, plan.centralDirectoryOffset + plan.centralDirectorySize, 'end records');
  const end = encodeEndRecords({
    entryCount: plan.entries.length,
    centralDirectoryOffset: plan.centralDirectoryOffset,
    centralDirectorySize: plan.centralDirectorySize,
    zip64: plan.zip64EndRecords,
  });
  yield end;
  position += end.length;
  assertPosition(position, plan.totalSize, 'end of archive');
}

// The plan and the encoders share their length functions, so this never fires; if it ever did, an archive with
// wrong offsets must not go out looking complete.
function assertPosition(actual: number, planned: number, what: string): void {
  if (actual !== planned) throw new Error(`zip writer out of step with its plan at the ${what}: byte ${actual}, planned ${planned}`);
}
