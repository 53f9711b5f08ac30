/**
 * Reads the main and override YAML files and turns them into one validated, frozen Settings
 * object. Pure: no global state here (see ./index.ts for the live config).
 */
import { existsSync, readFileSync } from 'node:fs';
import convict from 'convict';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';
import {
  globalSchema,
  maxActiveRequests,
  resourceSchema,
  secureResourceSchema,
  type ResourceSettings,
  type SecureResourceSettings,
  type Settings,
} from './schema.js';

type Obj = Record<string, unknown>;

export interface ConfigPaths {
  main: string;
  override?: string;
}

export function defaultConfigPaths(env: NodeJS.ProcessEnv = process.env): ConfigPaths {
  return { main: env.WT_CONFIG || 'config/watchtower.yaml', override: env.OVERRIDE_CONFIG_PATH || undefined };
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads a YAML file holding a mapping. A missing optional file is an empty mapping. */
export function readYamlFile(file: string, optional: boolean): Obj {
  if (!existsSync(file)) {
    if (optional) return {};
    throw new ConfigError(`config file ${file} does not exist`, { file });
  }
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`, { file });
  }
  if (doc === null || doc === undefined) return {};
  if (!isObj(doc)) throw new ConfigError(`config file ${file} must hold a mapping of keys to values`, { file });
  return doc;
}

/** Keys an override may not touch: secure ones and the non-reloadable ones. */
export function forbiddenOverrideKeys(override: Obj): string[] {
  const bad: string[] = [];
  for (const [key, value] of Object.entries(override)) {
    if (key === 'secure') bad.push('secure');
    else if (key === 'resources') {
      if (!isObj(value)) continue; // reported by validation
      for (const [rid, section] of Object.entries(value)) {
        if (!isObj(section)) continue;
        for (const k of Object.keys(section)) {
          const node = resourceSchema[k as keyof ResourceSettings];
          if (node && !node.reloadable) bad.push(`resources.${rid}.${k}`);
        }
      }
    } else {
      const node = globalSchema[key as keyof typeof globalSchema];
      if (node && !node.reloadable) bad.push(key);
    }
  }
  return bad;
}

/** Merges the override onto the main document: resources per resource id, everything else by key. */
function mergeDocs(main: Obj, override: Obj): Obj {
  const merged: Obj = { ...main, ...override };
  if (isObj(main.resources) || isObj(override.resources)) {
    const resources: Obj = { ...(isObj(main.resources) ? main.resources : {}) };
    for (const [rid, section] of Object.entries(isObj(override.resources) ? override.resources : {})) {
      resources[rid] = isObj(resources[rid]) && isObj(section) ? { ...(resources[rid] as Obj), ...section } : section;
    }
    merged.resources = resources;
  }
  if ('secure' in main) merged.secure = main.secure;
  return merged;
}

/** convict reports one problem per line, each starting with the key path. */
function keysFromConvictError(err: Error, prefix: string): string[] {
  return err.message
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const declared = /configuration param '([^']+)' not declared/.exec(line);
      if (declared) return prefix + declared[1];
      return prefix + line.split(':')[0].trim();
    });
}

function validateSection<T>(schema: convict.Schema<T>, data: unknown, prefix: string, file: string | undefined): T {
  if (!isObj(data)) throw new ConfigError(`${prefix.replace(/\.$/, '')} must be a mapping`, { file, keys: [prefix.replace(/\.$/, '')] });
  // env: {} keeps convict from reading process env for sections that must come only from files.
  const conf = convict(schema, { env: {}, args: [] });
  try {
    conf.load(data as Partial<T>);
    conf.validate({ allowed: 'strict' });
  } catch (err) {
    const keys = keysFromConvictError(err as Error, prefix);
    throw new ConfigError(`invalid config: ${(err as Error).message.replace(/\n/g, '; ')}`, { file, keys });
  }
  return conf.getProperties() as T;
}

function readPassword(rid: string, env: NodeJS.ProcessEnv): string {
  const direct = env[`${rid}__db_password`];
  if (direct !== undefined) return direct;
  const file = env[`${rid}__db_password_FILE`];
  if (file) {
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(`cannot read ${rid}__db_password_FILE (${file}): ${(err as Error).message}`, { keys: [`${rid}__db_password_FILE`] });
    }
  }
  return '';
}

/**
 * Builds Settings from a main document and an override document. Throws ConfigError naming the
 * file and the offending keys; the caller decides whether that is fatal.
 */
export function buildSettings(
  main: Obj,
  override: Obj,
  opts: { mainFile?: string; overrideFile?: string; env?: NodeJS.ProcessEnv } = {},
): Settings {
  const env = opts.env ?? process.env;
  const forbidden = forbiddenOverrideKeys(override);
  if (forbidden.length > 0) {
    throw new ConfigError(`override file may only change reloadable keys; refused: ${forbidden.join(', ')}`, {
      file: opts.overrideFile,
      keys: forbidden,
    });
  }
  const merged = mergeDocs(main, override);
  const { resources: rawResources = {}, secure: rawSecure = {}, ...rawGlobal } = merged;
  // Blame the override when it holds any of the offending keys, else the main file.
  const blame = (keys: string[]) =>
    keys.some((k) => k.split('.').reduce<unknown>((o, part) => (isObj(o) ? o[part] : undefined), override) !== undefined)
      ? opts.overrideFile
      : opts.mainFile;

  if (typeof rawGlobal.special_queries_routes_patterns === 'string') {
    rawGlobal.special_queries_routes_patterns = rawGlobal.special_queries_routes_patterns.split(/\s+/).filter(Boolean);
  }
  const conf = convict(globalSchema, { env, args: [] });
  try {
    conf.load(rawGlobal);
    conf.validate({ allowed: 'strict' });
  } catch (err) {
    const keys = keysFromConvictError(err as Error, '');
    throw new ConfigError(`invalid config: ${(err as Error).message.replace(/\n/g, '; ')}`, { file: blame(keys), keys });
  }
  const global = conf.getProperties();

  if (!isObj(rawResources)) throw new ConfigError('resources must be a mapping of resource id to settings', { file: blame(['resources']), keys: ['resources'] });
  if (!isObj(rawSecure)) throw new ConfigError('secure must be a mapping of resource id to settings', { file: opts.mainFile, keys: ['secure'] });

  const resources: Record<string, ResourceSettings> = {};
  const ids = new Set([...global.resource_ids, ...Object.keys(rawResources)]);
  for (const rid of ids) {
    const section = rawResources[rid] ?? {};
    const prefix = `resources.${rid}.`;
    let r: ResourceSettings;
    try {
      r = validateSection(resourceSchema, section, prefix, undefined);
    } catch (err) {
      const e = err as ConfigError;
      throw new ConfigError(e.message, { file: blame(e.keys), keys: e.keys });
    }
    if (r.db_min_conn_pool_size > r.db_max_conn_pool_size) {
      const keys = [`${prefix}db_min_conn_pool_size`, `${prefix}db_max_conn_pool_size`];
      throw new ConfigError(`${keys[0]} (${r.db_min_conn_pool_size}) must not exceed ${keys[1]} (${r.db_max_conn_pool_size})`, { file: blame(keys), keys });
    }
    if (maxActiveRequests(r) > r.db_max_conn_pool_size) {
      const keys = [`${prefix}max_active_requests`, `${prefix}db_max_conn_pool_size`];
      throw new ConfigError(
        `${keys[0]} (${r.max_active_requests}) must not exceed ${keys[1]} (${r.db_max_conn_pool_size}): each active request holds one connection, more would deadlock`,
        { file: blame(keys), keys },
      );
    }
    resources[rid] = Object.freeze(r);
  }

  const secure: Record<string, SecureResourceSettings> = {};
  for (const [rid, section] of Object.entries(rawSecure)) {
    if (isObj(section) && 'db_password' in section) {
      throw new ConfigError(`secure.${rid}.db_password must not be in a file: set env ${rid}__db_password or ${rid}__db_password_FILE`, {
        file: opts.mainFile,
        keys: [`secure.${rid}.db_password`],
      });
    }
    const s = validateSection(secureResourceSchema, section, `secure.${rid}.`, opts.mainFile);
    s.db_password = readPassword(rid, env);
    if (s.db_type === 'sqlite' && !s.db_path) {
      throw new ConfigError(`secure.${rid}.db_path is required for a sqlite resource`, { file: opts.mainFile, keys: [`secure.${rid}.db_path`] });
    }
    secure[rid] = Object.freeze(s);
  }
  for (const rid of global.resource_ids) {
    if (!secure[rid]) {
      throw new ConfigError(`enabled resource ${rid} has no secure.${rid} section (db_type and connection target)`, {
        file: opts.mainFile,
        keys: [`secure.${rid}`],
      });
    }
  }

  return Object.freeze({
    ...global,
    special_queries_routes_patterns: Object.freeze([...global.special_queries_routes_patterns]) as string[],
    resource_ids: Object.freeze([...global.resource_ids]) as string[],
    resources: Object.freeze(resources),
    secure: Object.freeze(secure),
  });
}

/** Reads both files and builds Settings. */
export function loadSettings(paths: ConfigPaths, env: NodeJS.ProcessEnv = process.env): Settings {
  const main = readYamlFile(paths.main, false);
  const override = paths.override ? readYamlFile(paths.override, true) : {};
  return buildSettings(main, override, { mainFile: paths.main, overrideFile: paths.override, env });
}

export interface ConfigChange {
  key: string;
  from: unknown;
  to: unknown;
}

/** Keys whose values differ between two Settings; secure values are never included. */
export function diffSettings(before: Settings, after: Settings): ConfigChange[] {
  const changes: ConfigChange[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  for (const key of Object.keys(globalSchema) as (keyof typeof globalSchema)[]) {
    if (!same(before[key], after[key])) changes.push({ key, from: before[key], to: after[key] });
  }
  const rids = new Set([...Object.keys(before.resources), ...Object.keys(after.resources)]);
  for (const rid of rids) {
    for (const key of Object.keys(resourceSchema) as (keyof ResourceSettings)[]) {
      const a = before.resources[rid]?.[key];
      const b = after.resources[rid]?.[key];
      if (!same(a, b)) changes.push({ key: `resources.${rid}.${key}`, from: a, to: b });
    }
  }
  return changes;
}
