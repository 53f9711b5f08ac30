/**
 * `watchtower keys create`: a new API key, printed once, and the line that stores its hash in the
 * keys file (auth.api_keys_file). The key itself is written nowhere: whoever runs the command hands
 * it to the client; the gateway keeps only the SHA-256 (src/auth/api-keys.ts says why that is enough).
 */
import { createKey, keyFileLine } from '../auth/api-keys.js';
import { KEY_ID, ROLE_NAME, parseKeyEntries } from '../auth/settings.js';

export interface CreatedKey {
  key: string;
  line: string;
}

/** A new key for `id` with `roles` (comma-separated) and an optional expiry; throws a usage message. */
export function createKeyEntry(id: string, roles: string, expires?: string): CreatedKey {
  if (!KEY_ID.test(id)) throw new Error(`--id must match ${KEY_ID}`);
  const list = roles.split(',').map((r) => r.trim()).filter(Boolean);
  if (list.length === 0 || !list.every((r) => ROLE_NAME.test(r))) throw new Error(`--roles must be role names separated by commas (${ROLE_NAME})`);
  const { key, sha256 } = createKey();
  const entry = { id, sha256, roles: list, ...(expires !== undefined ? { expires } : {}) };
  // The same check the gateway runs on the keys file, so the printed line is one it accepts.
  const problems: string[] = [];
  parseKeyEntries([entry], 'the new key', problems);
  if (problems.length > 0) throw new Error(problems.map((p) => p.replace(/^the new key\[0\] \([^)]*\)\./, '--')).join('; '));
  return { key, line: keyFileLine(entry) };
}

export function printCreated(id: string, created: CreatedKey, out: (line: string) => void): void {
  out(`API key ${id} (shown only now; the gateway keeps only its hash):`);
  out('');
  out(`  ${created.key}`);
  out('');
  out('Add this line under `keys:` in the keys file named by auth.api_keys_file, then reload (watchtower reload):');
  out('');
  out(created.line);
}
