/** Test helpers: fast per-resource config, reloads, polling and outcome capture. */
import { setTimeout as sleep } from 'node:timers/promises';
import { buildSettings, config, configEvents, setConfig, type ResourceSettings } from '../../src/config/index.js';

/** Short timeouts so a suite runs in seconds; tests override what they exercise. */
export const FAST: Partial<ResourceSettings> = {
  db_min_conn_pool_size: 0,
  db_max_conn_pool_size: 2,
  max_pending_requests: 10,
  request_slot_timeout: 0.3,
  db_conn_timeout: 0.2,
  db_conn_retry_wait_period: 0.2,
  db_conn_pool_acquire_timeout: 0.3,
  db_conn_max_uses: 1000,
  db_conn_max_age: 600,
  db_conn_idle_check_after: 600,
};

/** Makes `resources` (id → settings over FAST) the current config. */
export function useConfig(resources: Record<string, Partial<ResourceSettings>>, global: Record<string, unknown> = {}): void {
  const rids = Object.keys(resources);
  const main = {
    resource_ids: rids,
    pool_check_interval: 60,
    ...global,
    resources: Object.fromEntries(rids.map((rid) => [rid, { ...FAST, ...resources[rid] }])),
    secure: Object.fromEntries(rids.map((rid) => [rid, { db_type: 'sqlite', db_path: ':memory:' }])),
  };
  setConfig(buildSettings(main, {}, { env: {} }));
}

/** Swaps the config and announces it the way a SIGUSR1 reload does. */
export function reloadWith(resources: Record<string, Partial<ResourceSettings>>, global: Record<string, unknown> = {}): void {
  useConfig(resources, global);
  configEvents.emit('reload', config(), []);
}

/** Polls until `cond` holds; fails after `ms`. */
export async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

/** The value or the error a promise settles with. */
export function outcome<T>(p: Promise<T>): Promise<T | Error> {
  return p.then(
    (v) => v,
    (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
  );
}

/** Lets pending promise callbacks and zero-delay timers run. */
export const tick = (): Promise<void> => sleep(1);
