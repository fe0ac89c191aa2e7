// Both twins take whole seconds, as Redis's SET … EX does: a TTL Redis would refuse must fail the same way in memory.

/** Throws a RangeError unless ttlSeconds is a whole number of seconds, at least 1. */
export function checkTtlSeconds(ttlSeconds: number): void {
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new RangeError(`A key-value TTL must be a whole number of seconds, at least 1 (got ${ttlSeconds})`);
  }
}
