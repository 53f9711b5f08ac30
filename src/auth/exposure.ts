/**
 * The start-up check of who can reach the data: a gateway listening beyond this machine, serving
 * resources, with no credential source lets anyone who reaches the port call every endpoint. That
 * is said at every start (a WARNING record), or refused with `auth.required: true`.
 */
import { isIP } from 'node:net';
import type { Settings } from '../config/schema.js';
import { credentialSources } from './settings.js';

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

export type Exposure = { refuse: true; message: string } | { refuse: false; message: string } | undefined;

/** What to say (or refuse) at start-up; `rolesDeclared`: how many endpoints name roles. */
export function exposureAtStart(settings: Settings, rolesDeclared = 0): Exposure {
  if (credentialSources(settings.auth).length > 0) return undefined;
  const sources = 'auth.api_keys, auth.api_keys_file, auth.jwt_jwks_file or auth.jwt_jwks_url';
  if (settings.auth?.required === true) return { refuse: true, message: `auth.required is true and no credential source is configured (${sources})` };
  const problems: string[] = [];
  if (!isLoopback(settings.host) && settings.resource_ids.length > 0) {
    problems.push(
      `listening on ${settings.host}, beyond this machine, with ${settings.resource_ids.length} resource(s) and no credential source: anyone who reaches the port can call every endpoint. Configure ${sources} (README, "Securing WatchTower"), or set auth.required: true to refuse to start like this`,
    );
  }
  if (rolesDeclared > 0) problems.push(`${rolesDeclared} endpoint(s) name roles and, with no credential source, answer 401 to everyone`);
  return problems.length > 0 ? { refuse: false, message: problems.join('; ') } : undefined;
}
