// A FIFO queue of jobs on the model: one runs at a time (a native model has
// one set of scratch buffers, and each generation holds a session's caches
// for its whole length), the others wait in arrival order. A waiting job
// whose signal aborts (its client went away) leaves the queue without
// running; a full queue refuses new jobs at once (429) instead of letting
// them pile up.
import { ApiError } from './errors';

interface Waiting {
  start: () => void;
  cancel: (e: Error) => void;
}

function abortError(signal: AbortSignal): Error {
  if (signal.reason instanceof Error) return signal.reason;
  const e = new Error('the request was cancelled');
  e.name = 'AbortError';
  return e;
}

export class JobQueue {
  private readonly waiting: Waiting[] = [];
  private running = 0;

  /** `maxWaiting` jobs may wait behind the `concurrency` running ones. */
  constructor(
    readonly concurrency = 1,
    readonly maxWaiting = 64,
  ) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be an integer >= 1, got ${concurrency}`);
    if (!Number.isInteger(maxWaiting) || maxWaiting < 0) throw new Error(`maxWaiting must be an integer >= 0, got ${maxWaiting}`);
  }

  get active(): number {
    return this.running;
  }
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Runs `fn` when its turn comes. Rejects with ApiError 429 when the queue
   * is full, with the signal's AbortError when it aborts while waiting.
   */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) throw abortError(signal);
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxWaiting)
        throw new ApiError(429, `the server is busy: ${this.waiting.length} requests are waiting; try again later`, 'server_error', null, 'queue_full');
      await new Promise<void>((resolve, reject) => {
        const w: Waiting = {
          start: () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
          cancel: reject,
        };
        const onAbort = () => {
          const i = this.waiting.indexOf(w);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(abortError(signal!));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(w);
      });
    } else {
      this.running++;
    }
    // The slot is ours (release() handed it over or we took a free one).
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next.start(); // the running count passes to it unchanged
    else this.running--;
  }

  /** Rejects every waiting job (server shutdown). */
  clear(e: Error): void {
    for (const w of this.waiting.splice(0)) w.cancel(e);
  }
}
