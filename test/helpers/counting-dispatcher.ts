import type { IncomingHttpHeaders } from 'node:http';
import { Agent, DecoratorHandler, type Dispatcher } from 'undici';

// A dispatcher that counts the requests in flight to one origin (from sent until their answer is read or fails),
// keeping the peak: what a server sees of a client's concurrency, measured on the client's real sockets.

interface Decorated {
  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void;
  onResponseError(controller: Dispatcher.DispatchController, error: Error): void;
}

export interface CountingDispatcher {
  dispatcher: Dispatcher;
  /** The most requests to the origin in flight at once since the last reset. */
  peak(): number;
  /** Requests sent to the origin since the last reset. */
  sent(): number;
  reset(): void;
}

export function countingDispatcher(origin: string): CountingDispatcher {
  const counted = new URL(origin).origin;
  let inFlight = 0;
  let peak = 0;
  let sent = 0;
  // undici's DecoratorHandler passes every callback on (its types know only the older ones).
  const Decorator = DecoratorHandler as unknown as new (handler: Dispatcher.DispatchHandler) => Decorated;
  class Counted extends Decorator {
    #open = true;
    #end(): void {
      if (this.#open) inFlight -= 1;
      this.#open = false;
    }
    override onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
      this.#end();
      super.onResponseEnd(controller, trailers);
    }
    override onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
      this.#end();
      super.onResponseError(controller, error);
    }
  }
  const dispatcher = new Agent().compose((dispatch) => (options, handler) => {
    if (new URL(String(options.origin)).origin !== counted) return dispatch(options, handler);
    inFlight += 1;
    sent += 1;
    peak = Math.max(peak, inFlight);
    return dispatch(options, new Counted(handler));
  });
  return {
    dispatcher,
    peak: () => peak,
    sent: () => sent,
    reset: () => {
      peak = inFlight;
      sent = 0;
    },
  };
}
