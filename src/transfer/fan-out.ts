import { PassThrough, type Readable } from 'node:stream';

// One source stream read once, written to several destinations (one file to N Versions). A chunk goes on only
// when every live branch has taken the last one, so the slowest branch sets the pace and memory stays at one
// chunk per branch. A branch that fails (its request died) is dropped; the others carry on. When the source fails
// (the page's connection dropped), every branch is destroyed with its error: a branch may not have a reader yet
// (its storage link is still being asked for), so each branch listens for its own errors from birth, and its
// reader learns of the failure from the stream's state (`errored`, 'close').

export function fanOut(source: Readable, branches: number): Readable[] {
  // Nothing to share: the source itself, with no stage in between (every stage costs CPU and garbage per byte).
  if (branches === 1) return [source];
  const outputs = Array.from({ length: branches }, () => new PassThrough({ highWaterMark: 256 * 1024 }));
  const live = new Set(outputs);
  for (const output of outputs) {
    output.on('close', () => live.delete(output));
    output.on('error', () => undefined);
  }

  void (async () => {
    try {
      // destroyOnReturn off: when every branch has failed, the rest of the source is left to the caller to drain.
      for await (const chunk of source.iterator({ destroyOnReturn: false })) {
        const waits: Promise<void>[] = [];
        for (const output of live) {
          if (output.destroyed) continue;
          if (!output.write(chunk)) waits.push(drained(output));
        }
        if (live.size === 0) break;
        await Promise.all(waits);
      }
      for (const output of live) output.end();
    } catch (error) {
      for (const output of outputs) output.destroy(error instanceof Error ? error : new Error(String(error)));
    }
  })();
  return outputs;
}

function drained(output: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      output.off('drain', done);
      output.off('close', done);
      resolve();
    };
    output.once('drain', done);
    output.once('close', done);
  });
}
