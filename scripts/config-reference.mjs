#!/usr/bin/env node
// Prints the README's configuration tables from the schema (run after `npm run build`),
// so the documentation cannot drift from the code: a test checks every key appears in README.md.
import { globalSchema, resourceSchema, secureResourceSchema } from '../dist/config/schema.js';

function table(schema, prefix) {
  const rows = ['| key | default | reloadable | meaning |', '|---|---|---|---|'];
  for (const [key, node] of Object.entries(schema)) {
    const def = node.default === null ? '(none)' : JSON.stringify(node.default);
    const env = node.env ? ` Env \`${node.env}\`.` : '';
    rows.push(`| \`${prefix}${key}\` | \`${def}\` | ${node.reloadable ? 'yes' : 'no'} | ${node.doc}${env} |`);
  }
  return rows.join('\n');
}

console.log('### Global keys\n');
console.log(table(globalSchema, ''));
console.log('\n### Per-resource keys (`resources.<resource_id>.`)\n');
console.log(table(resourceSchema, ''));
console.log('\n### Connection targets (`secure.<resource_id>.`, never overridable)\n');
console.log(table(secureResourceSchema, ''));
