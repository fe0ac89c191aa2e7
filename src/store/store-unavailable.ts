// A shared store that cannot answer (Redis down, paused, unreachable, or refusing writes when full) is an outage
// every instance shares, not a bug in the request: requests that need the store are answered 503 with a stable code
// (src/web/errors.ts), and the next request asks the store again, so the service recovers by itself once it answers.

export class StoreUnavailableError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StoreUnavailableError';
  }
}

/**
 * Waits for a store command, but no longer than `ms`: past it the caller gets a StoreUnavailableError while the
 * command may still complete later (a paused Redis answers everything it was sent once it resumes).
 */
export async function withinDeadline<T>(command: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new StoreUnavailableError(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([command, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
