import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

// Independent readers judge every archive the tests make: Info-ZIP `unzip -t`, 7-Zip `7z t` and Python's
// zipfile (which also reads every entry back, checking its CRC-32, and hashes it). A missing tool fails the test
// with what to install: a skipped check would let a broken writer through unnoticed.

const installHints: Record<string, string> = {
  unzip: 'apt-get install unzip',
  '7z': 'apt-get install p7zip-full',
  python3: 'apt-get install python3',
};

class MissingToolError extends Error {}

interface ToolResult {
  code: number;
  output: string;
}

function runTool(tool: string, args: string[]): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(tool, args, { maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new MissingToolError(`The zip tests check archives with ${tool}, which is not installed: ${installHints[tool]} (CI installs it).`));
        return;
      }
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

export async function checkWithUnzip(path: string): Promise<void> {
  const { code, output } = await runTool('unzip', ['-tq', path]);
  if (code !== 0 || !output.includes('No errors detected')) throw new Error(`unzip -t rejected ${path} (exit ${code}):\n${output}`);
}

export async function checkWith7z(path: string): Promise<void> {
  const { code, output } = await runTool('7z', ['t', path]);
  // Exit 0 alone would let warnings through ("Headers Error", "data after the end"): 7z also prints them.
  if (code !== 0 || !output.includes('Everything is Ok') || /\b(warnings?|errors?)\s*:|headers error|unexpected end/i.test(output)) {
    throw new Error(`7z t rejected ${path} (exit ${code}):\n${output}`);
  }
}

export interface PythonEntry {
  name: string;
  size: number;
  crc: number;
  headerOffset: number;
  flagBits: number;
  compressType: number;
  dateTime: [number, number, number, number, number, number];
  /** Absent for entries read without hashing (the over-4-GiB one: the CRC check is enough there). */
  sha256?: string;
}

const pythonReader = `
import hashlib, json, sys, zipfile
path, run_testzip, skip_hash_over = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
with zipfile.ZipFile(path) as archive:
    bad = archive.testzip() if run_testzip else None
    entries = []
    for info in archive.infolist():
        digest = hashlib.sha256() if info.file_size <= skip_hash_over else None
        # Reading an entry to its end checks its CRC-32 (BadZipFile otherwise), streamed in 1 MiB blocks.
        with archive.open(info) as entry:
            while True:
                block = entry.read(1 << 20)
                if not block:
                    break
                if digest:
                    digest.update(block)
        item = {"name": info.filename, "size": info.file_size, "crc": info.CRC, "headerOffset": info.header_offset,
                "flagBits": info.flag_bits, "compressType": info.compress_type, "dateTime": list(info.date_time)}
        if digest:
            item["sha256"] = digest.hexdigest()
        entries.append(item)
# One write: json.dump would make millions of small ones for a big listing.
sys.stdout.write(json.dumps({"testzip": bad, "entries": entries}))
`;

/** Python's zipfile: `testzip()` (unless told not to) and every entry read to its end, hashed up to a size. */
export async function readWithPython(path: string, options: { testzip?: boolean; hashUpTo?: number } = {}): Promise<PythonEntry[]> {
  const testzip = options.testzip ?? true;
  const { code, output } = await runTool('python3', ['-c', pythonReader, path, testzip ? '1' : '0', String(options.hashUpTo ?? Number.MAX_SAFE_INTEGER)]);
  if (code !== 0) throw new Error(`python zipfile rejected ${path} (exit ${code}):\n${output.slice(-4000)}`);
  const result = JSON.parse(output) as { testzip: string | null; entries: PythonEntry[] };
  if (result.testzip !== null) throw new Error(`python zipfile testzip() found a bad entry in ${path}: ${result.testzip}`);
  return result.entries;
}

/** All three readers at once (they are independent, and the big archive takes a while in unzip). */
export async function checkWithAllReaders(
  path: string,
  pythonOptions: { testzip?: boolean; hashUpTo?: number } = {},
): Promise<PythonEntry[]> {
  const [, , entries] = await Promise.all([checkWithUnzip(path), checkWith7z(path), readWithPython(path, pythonOptions)]);
  return entries;
}

/** For a broken archive: every reader must refuse it. */
export async function expectRejectedByAllReaders(path: string): Promise<void> {
  // A reader that is not installed refuses nothing: that must fail the test, not count as a refusal.
  const refused = (error: unknown) => {
    if (error instanceof MissingToolError) throw error;
    return null;
  };
  const verdicts = await Promise.all([
    checkWithUnzip(path).then(() => 'unzip accepted it', refused),
    checkWith7z(path).then(() => '7z accepted it', refused),
    readWithPython(path).then(() => 'python zipfile accepted it', refused),
  ]);
  const accepted = verdicts.filter((verdict) => verdict !== null);
  if (accepted.length > 0) throw new Error(`${path} should be no valid archive, but ${accepted.join(', ')}`);
}

/** Fails early, with a clear message, where the temp folder cannot hold what a test will write. */
export async function assertFreeSpace(folder: string, bytes: number): Promise<void> {
  const stats = await statfs(folder);
  const free = stats.bavail * stats.bsize;
  if (free < bytes) {
    throw new Error(`this test writes ${(bytes / 2 ** 30).toFixed(1)} GiB to ${folder}, which has ${(free / 2 ** 30).toFixed(1)} GiB free`);
  }
}

export async function withTempFolder<T>(use: (folder: string) => Promise<T>): Promise<T> {
  const folder = await mkdtemp(join(tmpdir(), 'ami-transfer-zip-'));
  try {
    return await use(folder);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/** Writes a chunk stream to a file; resolves with the byte count. */
export async function writeToFile(chunks: AsyncIterable<Uint8Array>, path: string): Promise<number> {
  let bytes = 0;
  await pipeline(
    chunks,
    async function* (source: AsyncIterable<Uint8Array>) {
      for await (const chunk of source) {
        bytes += chunk.length;
        yield chunk;
      }
    },
    createWriteStream(path),
  );
  return bytes;
}

/** Deterministic bytes that differ from one position (and seed) to the next, so misplaced bytes show. */
export function patternBytes(length: number, seed: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  let state = (seed * 0x9e3779b1 + 1) >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
