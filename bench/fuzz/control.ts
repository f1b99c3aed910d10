/**
 * The control client: a separate process (so the attacks' own work never slows it) that asks every
 * service a cheap question over and over, on a fresh connection each time, and reports each
 * latency to its parent. A service that makes this client wait is a service one attacker can stall.
 */
import http from 'node:http';

export interface ControlTarget {
  name: string;
  url: string;
}

export interface ControlSample {
  name: string;
  at: number;
  ms: number;
  /** The status, or 0 when no answer came. */
  status: number;
}

function ask(url: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

async function watch(target: ControlTarget, intervalMs: number, stopped: () => boolean): Promise<void> {
  while (!stopped()) {
    const started = performance.now();
    const status = await ask(target.url, 10_000);
    const ms = performance.now() - started;
    process.send?.({ name: target.name, at: Date.now(), ms, status } satisfies ControlSample);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, intervalMs - ms)));
  }
}

if (process.send) {
  let stop = false;
  process.on('message', (message: { targets?: ControlTarget[]; intervalMs?: number; stop?: boolean }) => {
    if (message.stop) {
      stop = true;
      setTimeout(() => process.exit(0), 50);
      return;
    }
    for (const target of message.targets ?? []) void watch(target, message.intervalMs ?? 100, () => stop);
  });
  process.on('disconnect', () => process.exit(0));
}
