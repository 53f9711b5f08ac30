/**
 * The endpoint statements checked on their databases at start-up, and before a SIGHUP serves new
 * endpoint files (DESIGN.md). A statement a database refuses refuses the set: one ConfigError lists
 * every problem, in the lines `watchtower check` prints. A database that cannot be reached only
 * warns: the gateway still serves its other resources, and its readiness and reconnection take care
 * of one that is down. The row columns read on the way go to the OpenAPI document.
 */
import type { Settings } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { getLogger } from '../log/index.js';
import type { Endpoint } from './declaration.js';
import { endpointKey, verifyEndpoints, type Columns } from './verify.js';

const log = getLogger('startup-check.ts');

/** The row columns read from the database for an endpoint without declared `columns`. */
export type RowColumns = (ep: Endpoint) => Columns | undefined;

/**
 * Checks `endpoints` on their databases. With `plan: false` (a cluster worker: its primary checked
 * them) only the row columns are read, and nothing is refused.
 */
export async function checkEndpointStatements(settings: Settings, endpoints: Endpoint[], opts: { plan: boolean }): Promise<RowColumns> {
  if (endpoints.length === 0) return () => undefined;
  const v = await verifyEndpoints(settings, endpoints, opts);
  const list = (kind: 'refused' | 'unchecked') => v.problems.filter((p) => p.kind === kind).map((p) => p.message);
  const unchecked = list('unchecked');
  if (unchecked.length > 0) {
    log.warning('config-warn', `endpoint statements not checked, ${unchecked.length} problem(s): ${unchecked.join('; ')}`, { keys: 'endpoints' });
  }
  const refused = list('refused');
  if (refused.length > 0) {
    throw new ConfigError(`endpoint statements refused by the database, ${refused.length} problem(s): ${refused.join('; ')}`, { keys: ['endpoints'] });
  }
  if (opts.plan) {
    log.info('endpoints-checked', `${endpoints.length} endpoints, ${v.checked} statements checked on their databases, row types read for ${v.columns.size}`, {
      notes: v.notes.length > 0 ? v.notes.join('; ') : undefined,
    });
  }
  return (ep) => v.columns.get(endpointKey(ep));
}
