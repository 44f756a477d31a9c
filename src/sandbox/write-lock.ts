/**
 * Runs writes one at a time. MemoryRepository has no transactions, and a conditional create is
 * "search, then create" with awaits in between; two concurrent If-None-Exist requests would
 * otherwise both see zero matches and both create.
 */
export type WriteLock = <T>(write: () => Promise<T>) => Promise<T>;

export function createWriteLock(): WriteLock {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(write: () => Promise<T>): Promise<T> => {
    const run = tail.then(write);
    tail = run.catch(() => undefined);
    return run;
  };
}
