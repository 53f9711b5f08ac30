import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { globalSchema, resourceSchema, secureResourceSchema } from '../../src/config/schema.js';
import { authSchema } from '../../src/auth/settings.js';
import { ROOT } from '../helpers/gateway-process.js';

const readme = readFileSync(`${ROOT}/README.md`, 'utf8');

describe('README', () => {
  it('documents every config key with its default and whether it is reloadable', () => {
    for (const schema of [globalSchema, resourceSchema, secureResourceSchema, authSchema]) {
      for (const [key, node] of Object.entries(schema)) {
        const row = readme.split('\n').find((l) => l.startsWith(`| \`${key}\` |`));
        expect(row, key).toBeDefined();
        expect(row).toContain(`| ${node.reloadable ? 'yes' : 'no'} |`);
        expect(row).toContain(node.default === null ? '(none)' : JSON.stringify(node.default));
      }
    }
  });

  it('keeps the two-command quick start and the test command', () => {
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm test');
  });
});
