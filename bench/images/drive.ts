/** Driving the pipeline from outside, as bench:images and bench:engines do: uploads (retried on a 503) and waits for the tasks. */

/** Uploads answered 503 and retried (no master or storage node listed for a moment, or a task database briefly away). */
export const retried503 = { count: 0 };

/** Sends until the answer is 201, retrying a 503 as a person's browser or the CLI would; resolves with the task id. */
async function accepted(send: () => Promise<Response>): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const res = await send();
    if (res.status === 201) return ((await res.json()) as { id: number }).id;
    const text = await res.text();
    if (res.status !== 503 || attempt === 20) throw new Error(`upload answered ${res.status}: ${text}`);
    retried503.count++;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Uploads through the frontend (multipart, as the page does); resolves with the task id. */
export function upload(frontendUrl: string, png: Buffer): Promise<number> {
  return accepted(() => {
    const form = new FormData();
    form.append('uploadfile', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'photo.png');
    return fetch(`${frontendUrl}/submitTask`, { method: 'POST', body: form, headers: { accept: 'application/json' }, signal: AbortSignal.timeout(60_000) });
  });
}

/** Uploads straight to a master (POST /tasks, the PNG as the body), as the CLI does; resolves with the task id. */
export function uploadToMaster(masterUrl: string, png: Buffer): Promise<number> {
  return accepted(() => fetch(`${masterUrl}/tasks`, { method: 'POST', body: new Uint8Array(png), headers: { 'content-type': 'image/png' }, signal: AbortSignal.timeout(60_000) }));
}

/** Uploads every image with at most `inFlight` uploads open at a time, each through `send`. */
export async function uploadAll(images: Buffer[], inFlight: number, send: (png: Buffer, index: number) => Promise<number>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < images.length) {
      const index = next++;
      await send(images[index], index);
    }
  }));
}

/** Waits until nothing is pending or running, through the master's counts (one small answer, not the list of done tasks). */
export async function waitDone(masterUrl: string, intervalMs: number): Promise<Record<string, number>> {
  for (;;) {
    const { tasks: failed, counts } = (await (await fetch(`${masterUrl}/tasks?state=failed&limit=1`, { signal: AbortSignal.timeout(10_000) })).json()) as { tasks: { error: string }[]; counts: Record<string, number> };
    if (failed.length) throw new Error(`a task failed: ${failed[0].error}`);
    if ((counts.pending ?? 0) + (counts.running ?? 0) === 0) return counts;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function waitOne(masterUrl: string, id: number): Promise<void> {
  for (;;) {
    const task = (await (await fetch(`${masterUrl}/tasks/${id}`, { signal: AbortSignal.timeout(10_000) })).json()) as { state: string; error?: string };
    if (task.state === 'done') return;
    if (task.state === 'failed') throw new Error(task.error);
    await new Promise((r) => setTimeout(r, 2));
  }
}
