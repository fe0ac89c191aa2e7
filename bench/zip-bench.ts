import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import { planArchive, type ArchivePlan } from '../src/transfer/zip/zip-plan.ts';
import { writeZipArchive } from '../src/transfer/zip/zip-writer.ts';
import { verdict } from './bench-kit.ts';

// Zip writing alone, to a sink that discards: what the writer costs on top of moving the same bytes. Each case
// runs, side by side and alternating, a plain pass-through (the same sources, in order, same chunks, same sink),
// the same pass-through computing CRC-32 (the least any zip writer must do with the bytes), and the zip
// writer, and keeps each one's best round. Sources serve one reused in-memory buffer, so the figures are the
// writer's, not a network's or a disk's; the plain pass-through touches no byte, so its speed is only a
// ceiling. Target (issue 5): >= 1 GB/s for zip writing alone.

const MiB = 1024 * 1024;
const KiB = 1024;
const CHUNK_BYTES = 64 * KiB; // about what an HTTP body gives per chunk
const ROUNDS = 3;
const TARGET_MB_PER_S = 1000;

interface BenchCase {
  label: string;
  count: number;
  size: number;
}

const cases: BenchCase[] = [
  { label: '8 x 256 MiB', count: 8, size: 256 * MiB },
  { label: '2,000 x 256 KiB', count: 2_000, size: 256 * KiB },
];

const chunk = Buffer.alloc(CHUNK_BYTES, 0x5a);

function memorySource(size: number): Readable {
  let left = size;
  return new Readable({
    highWaterMark: CHUNK_BYTES,
    read() {
      if (left === 0) {
        this.push(null);
        return;
      }
      const length = Math.min(left, CHUNK_BYTES);
      left -= length;
      this.push(length === CHUNK_BYTES ? chunk : chunk.subarray(0, length));
    },
  });
}

/** Discards what it is given; samples RSS every so often (timers would not fire inside a busy pipeline). */
class DiscardingSink extends Writable {
  bytes = 0;
  peakRss = 0;
  #writes = 0;

  override _write(data: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.bytes += data.length;
    if ((this.#writes++ & 63) === 0) this.peakRss = Math.max(this.peakRss, process.memoryUsage.rss());
    done();
  }
}

async function* passThrough(plan: ArchivePlan): AsyncGenerator<Uint8Array> {
  for (const entry of plan.entries) for await (const data of memorySource(entry.size)) yield data as Buffer;
}

async function* passThroughWithCrc(plan: ArchivePlan): AsyncGenerator<Uint8Array> {
  let crc = 0;
  for (const entry of plan.entries) {
    for await (const data of memorySource(entry.size)) {
      crc = crc32(data as Buffer, crc);
      yield data as Buffer;
    }
  }
}

async function timeRun(chunks: AsyncIterable<Uint8Array>): Promise<{ seconds: number; bytes: number; peakRss: number }> {
  const sink = new DiscardingSink();
  const started = process.hrtime.bigint();
  await pipeline(chunks, sink);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { seconds, bytes: sink.bytes, peakRss: sink.peakRss };
}

const megabytesPerSecond = (bytes: number, seconds: number): number => bytes / 1e6 / seconds;

async function runCase(benchCase: BenchCase, baselineRss: number): Promise<void> {
  const plan = planArchive(Array.from({ length: benchCase.count }, (_, i) => ({ name: `Version/v${i}/file-${i}.mov`, size: benchCase.size })));
  let bestZip = 0;
  let bestPass = 0;
  let bestCrc = 0;
  let peakRss = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const pass = await timeRun(passThrough(plan));
    const crc = await timeRun(passThroughWithCrc(plan));
    const zip = await timeRun(writeZipArchive(plan, (entry) => memorySource(entry.size)));
    if (zip.bytes !== plan.totalSize) throw new Error(`zip wrote ${zip.bytes} bytes, planned ${plan.totalSize}`);
    bestPass = Math.max(bestPass, megabytesPerSecond(pass.bytes, pass.seconds));
    bestCrc = Math.max(bestCrc, megabytesPerSecond(crc.bytes, crc.seconds));
    bestZip = Math.max(bestZip, megabytesPerSecond(zip.bytes, zip.seconds));
    peakRss = Math.max(peakRss, pass.peakRss, crc.peakRss, zip.peakRss);
  }
  const met = bestZip >= TARGET_MB_PER_S;
  const rate = (value: number) => `${value.toFixed(0).padStart(6)} MB/s`;
  console.log(
    `${benchCase.label.padEnd(16)} zip ${rate(bestZip)} | pass-through ${rate(bestPass)} (zip ratio ${(bestZip / bestPass).toFixed(2)}) | ` +
      `pass-through + CRC-32 ${rate(bestCrc)} (zip ratio ${(bestZip / bestCrc).toFixed(2)}) | peak RSS growth ` +
      `${((peakRss - baselineRss) / MiB).toFixed(1)} MiB | ${(plan.totalSize / 1024 ** 3).toFixed(2)} GiB, best of ${ROUNDS} | ` +
      `target >= ${TARGET_MB_PER_S} MB/s: ${verdict(met)}`,
  );
}

console.log(`zip writer alone, to a discarding sink (${CHUNK_BYTES / KiB} KiB chunks from memory)`);
const baselineRss = process.memoryUsage.rss();
for (const benchCase of cases) await runCase(benchCase, baselineRss);
