/**
 * One spare worker thread, started ahead of time, so that the 15-30 ms a thread takes to start
 * (a V8 isolate, Node's bootstrap, the worker's imports) is off the path of the next call.
 * Isolation is unchanged: every call still gets a worker that has never run anything, and the
 * worker is terminated after its one call; when the spare is taken, the next one is started in
 * the background. A spare is unref'd, so it never keeps the process alive.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';

interface Spare {
  worker: Worker;
  key: string;
  /** Removes the spare's own listeners and refs the worker: it now belongs to a call. */
  claim(): Worker;
}

let spare: Spare | null = null;

function keyOf(path: string, limits: ResourceLimits): string {
  return `${path}\n${limits.maxOldGenerationSizeMb}/${limits.maxYoungGenerationSizeMb}/${limits.stackSizeMb}`;
}

function startWorker(path: string, limits: ResourceLimits): Worker {
  return new Worker(path, { resourceLimits: limits, stdout: false, stderr: false });
}

function startSpare(path: string, limits: ResourceLimits): Spare {
  const worker = startWorker(path, limits);
  const s: Spare = {
    worker,
    key: keyOf(path, limits),
    claim: () => {
      worker.off('error', gone);
      worker.off('exit', gone);
      worker.ref();
      return worker;
    },
  };
  // A spare that dies while idle (it should not) is dropped; the next call starts its own.
  function gone(): void {
    if (spare === s) spare = null;
  }
  worker.once('error', gone);
  worker.once('exit', gone);
  worker.unref();
  return s;
}

/** Makes sure a spare with these limits is starting or ready (at load time, before the first call). */
export function prestartWorker(path: string, limits: ResourceLimits): void {
  const key = keyOf(path, limits);
  if (spare?.key === key) return;
  if (spare) void spare.claim().terminate();
  spare = startSpare(path, limits);
}

/**
 * A fresh worker for one call: the spare when its limits match, else a new one; then starts the
 * next spare in the background. The caller posts the call's input and terminates the worker.
 */
export function takeWorker(path: string, limits: ResourceLimits): Worker {
  const key = keyOf(path, limits);
  let worker: Worker;
  if (spare?.key === key) {
    worker = spare.claim();
    spare = null;
  } else {
    worker = startWorker(path, limits);
  }
  setImmediate(() => {
    if (!spare) spare = startSpare(path, limits);
  });
  return worker;
}
