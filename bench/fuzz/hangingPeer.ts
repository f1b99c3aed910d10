/**
 * A peer that accepts connections and never answers (it reads and ignores), registered with the
 * registry as a subscriber with a heartbeat: the registry's calls to it hang until their timeouts.
 * Meanwhile, registrations, listings and patches for everyone else must stay fast.
 */
import net from 'node:net';
import { startStub, getJson, type Stub } from '../../harness/http.ts';

export interface HangingPeer {
  url: string;
  /** Connections the registry opened to it. */
  connections: number;
  close(): Promise<void>;
}

export async function startHangingPeer(): Promise<HangingPeer> {
  const sockets = new Set<net.Socket>();
  const peer = { connections: 0 } as HangingPeer;
  const server = net.createServer((socket) => {
    peer.connections++;
    sockets.add(socket);
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  peer.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  peer.close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return peer;
}

export function hangingRegistration(peer: HangingPeer, name: string, requiredServices: string[]): Record<string, unknown> {
  return {
    serviceName: name,
    serviceURL: peer.url,
    heartbeatURL: `${peer.url}/heartbeat`,
    serviceUpdateURL: `${peer.url}/services`,
    requiredServices,
  };
}

export async function register(registryUrl: string, body: Record<string, unknown>): Promise<{ status: number; ms: number; instanceId?: string }> {
  const started = performance.now();
  const res = await getJson(`${registryUrl}/services`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, ms: performance.now() - started, instanceId: res.body?.instanceId };
}

export interface RegistryRound {
  registerMs: number;
  listMs: number;
  deregisterMs: number;
  /** From sending the registration to the watcher holding the patch that announces it. */
  patchMs: number;
  ok: boolean;
  problem?: string;
}

/**
 * One round of what a healthy client does while the hanging peer sits there: register a fresh
 * provider, see the watcher told, list, deregister. Every step is timed.
 */
export async function registryRound(registryUrl: string, watcher: Stub, provider: Stub, name: string, limitMs: number): Promise<RegistryRound> {
  const round: RegistryRound = { registerMs: 0, listMs: 0, deregisterMs: 0, patchMs: NaN, ok: true };
  const registeredAt = Date.now();
  const reg = await register(registryUrl, provider.registration(name));
  round.registerMs = reg.ms;
  if (reg.status !== 200 || !reg.instanceId) return { ...round, ok: false, problem: `registration answered ${reg.status}` };
  const deadline = registeredAt + limitMs * 2;
  while (Date.now() < deadline) {
    const patch = watcher.patches.find((p) => p.at >= registeredAt && p.body.added?.some((e) => e.url === provider.url));
    if (patch) {
      round.patchMs = Math.max(0, patch.at - registeredAt);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (Number.isNaN(round.patchMs)) round.ok = false;
  const listStarted = performance.now();
  const listing = await getJson(`${registryUrl}/services`);
  round.listMs = performance.now() - listStarted;
  if (listing.status !== 200) round.ok = false;
  const deregStarted = performance.now();
  const dereg = await getJson(`${registryUrl}/services/${reg.instanceId}`, { method: 'DELETE' });
  round.deregisterMs = performance.now() - deregStarted;
  if (dereg.status !== 200) round.ok = false;
  return round;
}

export { startStub };
