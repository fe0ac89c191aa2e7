// A wait on a promise with a bound: resolves when it settles (its failure is the caller's to see elsewhere) or
// after `ms`, whichever comes first; the timer is cleared either way. No imports.

export function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const elapsed = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  const settled = promise.then(
    () => undefined,
    () => undefined,
  );
  return Promise.race([settled, elapsed]).finally(() => clearTimeout(timer));
}
