/** The master's Prometheus metrics: tasks by state, claim waits, completions by outcome, lapses, uploads made and refused. */
import type { Registry } from 'prom-client';
import { prom } from '../../shared/metrics.ts';
import { TASK_STATES, type TaskState } from '../protocol.ts';

export function masterMetrics(registry: Registry, read: { counts: () => Promise<Record<TaskState, number>>; waiting: () => number }) {
  new prom.Gauge({
    name: 'imagemaster_tasks',
    help: 'Tasks by state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      // The database away: the gauge keeps its last values rather than failing /metrics.
      const counts = await read.counts().catch(() => undefined);
      if (counts) for (const state of TASK_STATES) this.set({ state }, counts[state]);
    },
  });
  new prom.Gauge({
    name: 'imagemaster_claims_waiting',
    help: 'Claims waiting for a task',
    registers: [registry],
    collect() {
      this.set(read.waiting());
    },
  });
  return {
    claimWait: new prom.Histogram({
      name: 'imagemaster_claim_wait_seconds',
      help: 'How long claims waited, by whether they got a task',
      labelNames: ['got_task'],
      buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 15, 30],
      registers: [registry],
    }),
    completions: new prom.Counter({ name: 'imagemaster_completions_total', help: 'Completion calls by outcome', labelNames: ['outcome'], registers: [registry] }),
    lapses: new prom.Counter({ name: 'imagemaster_lease_lapses_total', help: 'Leases that lapsed', registers: [registry] }),
    submitted: new prom.Counter({ name: 'imagemaster_tasks_created_total', help: 'Tasks created', registers: [registry] }),
    rejected: new prom.Counter({ name: 'imagemaster_uploads_rejected_total', help: 'Uploads refused, by code', labelNames: ['code'], registers: [registry] }),
  };
}
