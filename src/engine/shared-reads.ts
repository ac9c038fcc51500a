/**
 * Store reads in flight by key, shared by the requests that want the same key at the same time: a
 * busy key costs one round trip per batch of requests, not one per request.
 *
 * A request joins a read only when that read's deadline fits its own budget. The read must end (at
 * the latest, by its deadline) no later than the request's own deadline, so no request waits past
 * its `timeoutMs` because of another's read. It must also have at least half the time left that
 * the request has, so no request fails early, and then renders without the mint lock, on a budget
 * another request had nearly spent. Otherwise the request sends its own read, which later requests
 * join instead.
 */
export class SharedReads<T> {
  private readonly reads = new Map<
    string,
    { readonly promise: Promise<T>; readonly deadline: number }
  >()

  /** Joins the read of `key` in flight when {@link joinable}; else starts one with `send`. */
  read(key: string, deadline: number, send: () => Promise<T>): Promise<T> {
    const inFlight = this.reads.get(key)
    if (inFlight !== undefined && joinable(inFlight.deadline, deadline, Date.now())) {
      return inFlight.promise
    }
    const read = { promise: send(), deadline }
    this.reads.set(key, read)
    // Registered before any joiner's continuation, so it runs first: a request that comes after the
    // answer sends a new read.
    const done = (): void => {
      if (this.reads.get(key) === read) this.reads.delete(key)
    }
    read.promise.then(done, done)
    return read.promise
  }
}

/** Whether a request with `deadline` may join a read in flight that gives up at `readDeadline`. */
export function joinable(readDeadline: number, deadline: number, now: number): boolean {
  return readDeadline <= deadline && readDeadline - now >= (deadline - now) / 2
}
