import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scavengeFlagChosen } from '../src/runtime-flags.js';
import { ROOT } from './helpers/gateway-process.js';

const FLAGS_MODULE = join(ROOT, 'dist', 'runtime-flags.js');

/**
 * Runs a short allocation-heavy script under --trace-gc-nvp, after importing the built
 * runtime-flags module, and returns the scavenges that ran and how many used helper threads.
 */
function scavenges(nodeArgs: string[]): { total: number; withHelpers: number } {
  const script = `await import(${JSON.stringify(FLAGS_MODULE)});
const keep = new Array(200000);
for (let i = 0; i < 4e6; i++) keep[i % keep.length] = { i, s: 'x' + (i & 7) };`;
  const out = spawnSync(process.execPath, [...nodeArgs, '--trace-gc-nvp', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  expect(out.status, out.stderr).toBe(0);
  const times = [...out.stdout.matchAll(/background\.scavenge\.parallel=([\d.]+)/g)].map((m) => Number(m[1]));
  return { total: times.length, withHelpers: times.filter((t) => t > 0).length };
}

describe('runtime flags', () => {
  it('recognises a scavenge choice on the command line, in either spelling', () => {
    expect(scavengeFlagChosen([])).toBe(false);
    expect(scavengeFlagChosen(['--inspect', '--max-old-space-size=512'])).toBe(false);
    expect(scavengeFlagChosen(['--parallel-scavenge'])).toBe(true);
    expect(scavengeFlagChosen(['--no-parallel-scavenge'])).toBe(true);
    expect(scavengeFlagChosen(['--parallel_scavenge'])).toBe(true);
    expect(scavengeFlagChosen(['--parallel-scavenge-task-trace'])).toBe(false);
  });

  it('makes a gateway process scavenge on its main thread', () => {
    const ours = scavenges([]);
    expect(ours.total).toBeGreaterThan(5);
    expect(ours.withHelpers).toBe(0);
  });

  it.skipIf(availableParallelism() < 2)('leaves V8 its helper threads when the command line asks for them', () => {
    const chosen = scavenges(['--parallel-scavenge']);
    expect(chosen.total).toBeGreaterThan(5);
    expect(chosen.withHelpers).toBeGreaterThan(0);
  });
});
