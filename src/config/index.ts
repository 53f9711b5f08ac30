/**
 * The process's live configuration. Components are given a reader (`config` itself, by default)
 * and call it at the moment of use, so a reload reaches every path on its next read; the snapshot
 * is frozen and swapped in one assignment, so a reader never sees half of an old and half of a new
 * config.
 */
import { EventEmitter } from 'node:events';
import { defaultConfigPaths, diffSettings, loadSettings, loadSettingsOffThread, type ConfigChange, type ConfigPaths } from './load.js';
import { ConfigError } from '../errors.js';
import { globalSchema, resourceSchema, type ResourceSettings, type Settings } from './schema.js';
import { isAuthKeyReloadable } from '../auth/settings.js';

export * from './schema.js';
export { buildSettings, diffSettings, loadSettings, loadSettingsOffThread, defaultConfigPaths, type ConfigChange, type ConfigPaths } from './load.js';
export { MAX_CONFIG_FILE_BYTES } from './read-file.js';

let current: Settings | undefined;
let paths: ConfigPaths = defaultConfigPaths();

/** Emits 'reload' (settings, changes) after a successful swap. */
export const configEvents = new EventEmitter<{ reload: [Settings, ConfigChange[]] }>();

export function config(): Settings {
  if (!current) throw new Error('config used before it was loaded');
  return current;
}

/** The section of resource `rid` in `settings`; throws when it has none. */
export function resourceSettingsOf(settings: Settings, rid: string): ResourceSettings {
  const r = settings.resources[rid];
  if (!r) throw new Error(`no config for resource ${rid}`);
  return r;
}

/** How a component reads its configuration: at the moment of use, so a reload reaches it. */
export type SettingsReader = () => Settings;

/** Loads config at start-up (throws ConfigError) and makes it current. */
export function initConfig(p: ConfigPaths = defaultConfigPaths()): Settings {
  paths = p;
  current = loadSettings(paths);
  return current;
}

/** The files the live config was loaded from. */
export function configPaths(): Readonly<ConfigPaths> {
  return paths;
}

/** Makes given settings current (start-up from an already built object, and tests). */
export function setConfig(settings: Settings): void {
  current = settings;
}

/** The reload in progress (or the last one): reloads run one after another. */
let reloading: Promise<unknown> = Promise.resolve();

/**
 * Re-reads both files (parsed in a worker thread, so requests keep being served meanwhile); on
 * success swaps and resolves with the changes, on failure rejects with a ConfigError and leaves
 * the running config exactly as it was. A reload asked for while one runs starts after it, so
 * each compares against the config the previous one left. `check` sees the new settings before
 * the swap; what it throws refuses the reload the same way (SIGHUP checks the endpoint files).
 */
export function reloadConfig(check?: (after: Settings) => void): Promise<ConfigChange[]> {
  const run = reloading.then(() => reloadOnce(check));
  reloading = run.catch(() => undefined);
  return run;
}

async function reloadOnce(check?: (after: Settings) => void): Promise<ConfigChange[]> {
  const after = await loadSettingsOffThread(paths);
  const before = config();
  const changes = diffSettings(before, after);
  const needRestart = changes.filter((c) => !isReloadable(c.key)).map((c) => c.key);
  if (JSON.stringify(before.secure) !== JSON.stringify(after.secure)) needRestart.push('secure');
  if (needRestart.length > 0) {
    throw new ConfigError(`keys changed that only a restart can apply: ${needRestart.join(', ')}`, { file: paths.main, keys: needRestart });
  }
  check?.(after);
  current = after;
  configEvents.emit('reload', after, changes);
  return changes;
}

/** Whether a dotted key (`log_level`, `resources.<rid>.<key>`) may change at run time. */
export function isReloadable(key: string): boolean {
  const parts = key.split('.');
  if (parts[0] === 'resources') return resourceSchema[parts[2] as keyof typeof resourceSchema]?.reloadable ?? false;
  if (parts[0] === 'auth') return isAuthKeyReloadable(parts[1] ?? '');
  return globalSchema[parts[0] as keyof typeof globalSchema]?.reloadable ?? false;
}
