/** The chaos run's image load: every image uploaded to the master over SUBMIT_SECONDS, retried while the master is away. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChaosImage } from './images.ts';
import type { Platform } from './platform.ts';
import { clock, SUBMIT_SECONDS } from './settings.ts';

export interface Submission {
  image: ChaosImage;
  taskId?: number;
  attempts: number;
  /** Failed attempts whose request may have reached the master (reset, timeout, 5xx): a possible duplicate. */
  ambiguous: number;
}

export async function submitAll(p: Platform, images: ChaosImage[]): Promise<Submission[]> {
  const subs: Submission[] = images.map((image) => ({ image, attempts: 0, ambiguous: 0 }));
  const gapMs = (SUBMIT_SECONDS * 1000) / images.length;
  await Promise.all(
    subs.map(async (sub, k) => {
      await sleep(k * gapMs);
      while (Date.now() < clock.deadline) {
        sub.attempts++;
        try {
          const res = await fetch(`${p.master.url}/tasks?op=${sub.image.op}`, {
            method: 'POST',
            headers: { 'content-type': 'image/png' },
            body: new Uint8Array(sub.image.png),
            signal: AbortSignal.timeout(15_000),
          });
          const text = await res.text();
          if (res.status === 201) {
            sub.taskId = (JSON.parse(text) as { id: number }).id;
            return;
          }
          if (res.status < 500) throw new Error(`upload ${sub.image.index} refused: ${res.status} ${text}`);
          if (res.status !== 503) sub.ambiguous++;
        } catch (err) {
          if ((err as Error).message.startsWith('upload')) throw err;
          const code = (err as { cause?: { code?: string } }).cause?.code;
          if (code !== 'ECONNREFUSED') sub.ambiguous++;
        }
        await sleep(300);
      }
    }),
  );
  return subs;
}
