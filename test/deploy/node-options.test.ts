/**
 * The gateway is launched with the same Node options whichever way it is started: `npm start`, the
 * container image, the `watchtower` bin, and the benchmarks (which measure what users run). The
 * options matter: without the young-generation cap, Node 24 let the gateway's young generation grow
 * to 128 MB under load, and without the fixed growth factor its heaps grew to several times what was
 * live (bench/README.md, "The embedded database at its limit").
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs module of the benchmarks, without types
import { GATEWAY_NODE_ARGS } from '../../bench/lib/gateway.mjs';

const root = new URL('../../', import.meta.url);
const read = (file: string) => readFileSync(new URL(file, root), 'utf8');
const EXPECTED = ['--max-semi-space-size=2', '--heap-growing-percent=50'];

/** The options between `node` and the script in a command line. */
function optionsOf(words: string[], script: string): string[] {
  const node = words.indexOf('node');
  const at = words.indexOf(script);
  expect(node, `node in ${words.join(' ')}`).toBeGreaterThanOrEqual(0);
  expect(at, `${script} in ${words.join(' ')}`).toBeGreaterThan(node);
  return words.slice(node + 1, at);
}

describe('Node options of the gateway', () => {
  it('npm start, the Dockerfile, the bin and the benchmarks pass the same ones', () => {
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    const start = optionsOf(pkg.scripts.start.split(/\s+/), 'dist/main.js');
    const cmd = /^CMD (\[.*\])$/m.exec(read('Dockerfile'))?.[1];
    const image = optionsOf(JSON.parse(cmd ?? '[]') as string[], 'dist/main.js');
    const shebang = read('src/cli.ts').split('\n')[0];
    const bin = /^#!\/usr\/bin\/env -S node(( --\S+)*)$/.exec(shebang)?.[1].trim().split(' ') ?? [`unexpected shebang: ${shebang}`];
    expect({ start, image, bin, bench: GATEWAY_NODE_ARGS }).toEqual({ start: EXPECTED, image: EXPECTED, bin: EXPECTED, bench: EXPECTED });
  });

  it('the built bin starts under its shebang (env -S splits the options, node accepts them)', () => {
    const cli = new URL('dist/cli.js', root).pathname;
    // As the kernel runs a script: the interpreter, the rest of the line as one argument, the file.
    const [interpreter, rest] = readFileSync(cli, 'utf8').split('\n')[0].slice(2).split(/ (.*)/);
    const out = execFileSync(interpreter, [rest, cli, '--help'], { encoding: 'utf8', timeout: 20_000 });
    expect(out).toMatch(/^Usage: watchtower <command>/);
  });
});
