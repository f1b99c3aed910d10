/**
 * The image services (storage, the master, the worker and the frontend) allocate a buffer of an image's size or
 * so per request while their heaps of JavaScript objects stay small. V8 counts those ArrayBuffers against the old
 * generation's limit and, its young generation being nearly empty (so no scavenge frees them), began a full
 * mark-compact every 2-3 images: 80-89 in a bench:images run of 117 uploads in storage, and half of storage's CPU.
 * The limit at 4x the live heap (the factor V8 otherwise picks between 1.1 and 4 by itself) made them 0-6, for
 * 0-27 MB more peak RSS per service. Each sets it on itself as it starts (shared/v8Flags.ts);
 * `--heap-growing-percent=0` on node's command line leaves the factor to V8.
 */
import { setV8Flags } from '../shared/v8Flags.ts';

export const IMAGE_HEAP_GROWTH = '--heap-growing-percent=300';

export function growHeapForImages(): void {
  setV8Flags([IMAGE_HEAP_GROWTH]);
}
