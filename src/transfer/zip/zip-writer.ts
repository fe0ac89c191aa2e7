import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import {
  centralDirectoryHeaderLength,
  encodeDataDescriptor,
  encodeEndRecords,
  encodeLocalFileHeader,
  writeCentralDirectoryHeader,
} from './zip-format.ts';
import type { ArchivePlan, PlannedEntry } from './zip-plan.ts';

// Writes a planned archive as a Readable. Source chunks are passed on as they come ('data' events, no copy) and
// the only per-chunk work is the running CRC-32 (native zlib.crc32) and the byte count: no async iteration per
// chunk, whose promises and joined buffers cost more CPU than the CRC itself. Backpressure is the stream's: when
// the consumer is full the current source is paused, and a source is opened only when its turn comes. A failure
// (a source's error, or a length that differs from the plan) destroys the archive with that error, before any
// excess byte is passed on; destroying the archive destroys the open source.
//
// Memory is one header at a time, a 64 KiB batch of the central directory, and four bytes of CRC per entry
// until the central directory is written.

/** The bytes of one entry: a Readable (passed through as it is), or chunks in an iterable or async iterable. */
export type EntrySource = Readable | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
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

export interface ZipWriteOptions {
  /**
   * Resume: the archive from this byte on (a browser resuming a cut download with Range). The bytes before it are
   * the same every time (the plan fixes every offset) and are not sent; an entry wholly before it whose CRC-32 is
   * in `knownCrcs` is not even read, the others are read again only to compute theirs.
   */
  from?: number;
  /** CRC-32 of entries by index, as an earlier pass over the same plan computed them. */
  knownCrcs?: ReadonlyMap<number, number>;
  /** Told each entry's CRC-32 once its bytes are through, to be kept for a later resume. */
  onEntryCrc?(index: number, crc: number): void;
}

/**
 * The archive `plan` describes, reading each entry's bytes from `openSource(entry)` in order: exactly
 * `plan.totalSize` bytes (from `options.from` on), or destroyed with `ZipEntrySizeError` (a source's length
 * differs from the plan) or a source's own error.
 */
export function writeZipArchive(plan: ArchivePlan, openSource: OpenEntrySource, options: ZipWriteOptions = {}): Readable {
  return new ZipArchiveStream(plan, openSource, options);
}

class ZipArchiveStream extends Readable {
  readonly #plan: ArchivePlan;
  readonly #openSource: OpenEntrySource;
  readonly #options: ZipWriteOptions;
  readonly #from: number;
  readonly #crcs: Uint32Array;
  #position = 0;
  /** Absolute offset of the next byte pushed (or dropped, before `from`). */
  #emitted = 0;
  /** The next entry to open, then (past the last) the next central directory header to write. */
  #next = 0;
  #phase: 'entries' | 'directory' | 'done' = 'entries';
  /** The entry being read: its source, until it ends. */
  #source: Readable | null = null;
  #opening = false;
  /** The previous entry's data descriptor, sent with the next local header: one write instead of two per entry. */
  #descriptor: Buffer | null = null;
  /**
   * The current entry's local header (after that descriptor), held until its first chunk: pushed together, they
   * leave in one write (the response corks what is written in one tick), not a small write of their own.
   */
  #header: Buffer | null = null;

  constructor(plan: ArchivePlan, openSource: OpenEntrySource, options: ZipWriteOptions) {
    super();
    this.#plan = plan;
    this.#openSource = openSource;
    this.#options = options;
    this.#from = options.from ?? 0;
    if (!Number.isSafeInteger(this.#from) || this.#from < 0 || this.#from > plan.totalSize) throw new RangeError(`cannot start the archive at byte ${this.#from}`);
    this.#crcs = new Uint32Array(plan.entries.length);
  }

  /**
   * Every byte leaves through here, in order: those before `from` are dropped (a resumed download has them).
   * Answers whether more may be pushed now.
   */
  #emit(chunk: Buffer | Uint8Array): boolean {
    const start = this.#emitted;
    this.#emitted += chunk.length;
    if (this.#emitted <= this.#from) return true;
    return this.push(start >= this.#from ? chunk : chunk.subarray(this.#from - start));
  }

  override _read(): void {
    if (this.#source !== null) {
      this.#source.resume();
      return;
    }
    if (this.#opening) return;
    try {
      if (this.#phase === 'entries') this.#nextEntry();
      else if (this.#phase === 'directory') this.#nextDirectoryBatch();
    } catch (error) {
      this.destroy(error as Error);
    }
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.#source?.destroy();
    this.#source = null;
    done(error);
  }

  #send(chunk: Buffer): boolean {
    this.#position += chunk.length;
    return this.#emit(chunk);
  }

  #nextEntry(): void {
    // Entries wholly before the resume point whose CRC is known are not read: their bytes are the plan's.
    for (let entry = this.#plan.entries[this.#next]; entry !== undefined && this.#skippable(entry); entry = this.#plan.entries[this.#next]) {
      this.#next += 1;
      const crc = this.#options.knownCrcs!.get(entry.index)!;
      if (this.#descriptor !== null) this.#emit(this.#descriptor);
      const header = encodeLocalFileHeader(entry);
      this.#emit(header);
      this.#emitted += entry.size;
      this.#position += header.length + entry.size;
      this.#crcs[entry.index] = crc;
      this.#descriptor = encodeDataDescriptor(entry, crc);
      this.#position += this.#descriptor.length;
    }
    const entry = this.#plan.entries[this.#next];
    if (entry === undefined) {
      if (this.#descriptor !== null) this.#emit(this.#descriptor);
      this.#descriptor = null;
      assertPosition(this.#position, this.#plan.centralDirectoryOffset, 'central directory');
      this.#phase = 'directory';
      this.#next = 0;
      this.#nextDirectoryBatch();
      return;
    }
    this.#next += 1;
    assertPosition(this.#position, entry.localHeaderOffset, `local header of entry ${entry.index}`);
    const header = encodeLocalFileHeader(entry);
    const descriptor = this.#descriptor;
    this.#descriptor = null;
    this.#position += header.length;
    this.#header = descriptor === null ? header : Buffer.concat([descriptor, header], descriptor.length + header.length);
    const opened = this.#openSource(entry);
    if (opened instanceof Promise) {
      this.#opening = true;
      opened.then(
        (source) => {
          this.#opening = false;
          if (!this.destroyed) this.#read(entry, source);
        },
        (error: unknown) => this.destroy(error instanceof Error ? error : new Error(String(error))),
      );
    } else {
      this.#read(entry, opened);
    }
  }

  #skippable(entry: PlannedEntry): boolean {
    return entry.dataOffset + entry.size <= this.#from && this.#options.knownCrcs?.has(entry.index) === true;
  }

  /** Passes the entry's chunks on as they come, then writes its descriptor and goes on to the next entry. */
  #read(entry: PlannedEntry, opened: EntrySource): void {
    const source = opened instanceof Readable ? opened : Readable.from(opened, { objectMode: false });
    this.#source = source;
    let crc = 0;
    let received = 0;
    const stop = (error: Error | null): void => {
      source.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      this.#source = null;
      if (error !== null) {
        source.destroy();
        this.destroy(error);
      }
    };
    const onData = (chunk: unknown): void => {
      if (!(chunk instanceof Uint8Array)) {
        stop(new TypeError(`zip entry ${entry.index} (${JSON.stringify(entry.name)}): source must give bytes, got ${typeof chunk}`));
        return;
      }
      if (chunk.length === 0) return;
      received += chunk.length;
      if (received > entry.size) {
        stop(new ZipEntrySizeError(entry, received));
        return;
      }
      crc = crc32(chunk, crc);
      this.#position += chunk.length;
      this.#flushHeader();
      if (!this.#emit(chunk)) source.pause();
    };
    const onEnd = (): void => {
      if (received !== entry.size) {
        stop(new ZipEntrySizeError(entry, received));
        return;
      }
      stop(null);
      this.#flushHeader();
      this.#crcs[entry.index] = crc;
      this.#options.onEntryCrc?.(entry.index, crc);
      // Counted here, sent with the next local header (or before the central directory).
      this.#descriptor = encodeDataDescriptor(entry, crc);
      this.#position += this.#descriptor.length;
      this._read();
    };
    const onError = (error: Error): void => stop(error);
    const onClose = (): void => stop(new Error(`zip entry ${entry.index} (${JSON.stringify(entry.name)}): its source closed before its end`));
    source.on('data', onData).once('end', onEnd).once('error', onError).once('close', onClose);
  }

  #flushHeader(): void {
    if (this.#header === null) return;
    this.#emit(this.#header);
    this.#header = null;
  }

  /** One batch of central directory headers, or the end records after the last batch. */
  #nextDirectoryBatch(): void {
    const { entries } = this.#plan;
    if (this.#next >= entries.length) {
      assertPosition(this.#position, this.#plan.centralDirectoryOffset + this.#plan.centralDirectorySize, 'end records');
      this.#send(
        encodeEndRecords({
          entryCount: entries.length,
          centralDirectoryOffset: this.#plan.centralDirectoryOffset,
          centralDirectorySize: this.#plan.centralDirectorySize,
          zip64: this.#plan.zip64EndRecords,
        }),
      );
      assertPosition(this.#position, this.#plan.totalSize, 'end of archive');
      this.#phase = 'done';
      this.push(null);
      return;
    }
    // A new buffer for each batch: the consumer may still hold the one before.
    let batch = Buffer.alloc(Math.max(CENTRAL_DIRECTORY_BATCH_BYTES, centralDirectoryHeaderLength(entries[this.#next]!)));
    let used = 0;
    while (this.#next < entries.length) {
      const entry = entries[this.#next]!;
      if (used + centralDirectoryHeaderLength(entry) > batch.length) break;
      used = writeCentralDirectoryHeader(batch, used, entry, this.#crcs[entry.index]!);
      this.#next += 1;
    }
    batch = batch.subarray(0, used);
    this.#send(batch);
    // Wholly before the resume point, the batch was dropped: nothing was pushed, so no read will come to ask for
    // the next one.
    if (this.#emitted <= this.#from) this.#nextDirectoryBatch();
  }
}

// The plan and the encoders share their length functions, so this never fires; if it ever did, an archive with
// wrong offsets must not go out looking complete.
function assertPosition(actual: number, planned: number, what: string): void {
  if (actual !== planned) throw new Error(`zip writer out of step with its plan at the ${what}: byte ${actual}, planned ${planned}`);
}
