/**
 * Every `watchtower` command has help, reached as `<command> --help` and as `help <command>`, and
 * that help states the command's exit codes, so scripts know what they can rely on.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/gateway-process.js';

const CLI = join(ROOT, 'dist', 'cli.js');
const COMMANDS = ['start', 'check', 'reload', 'stat', 'keys'];

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('watchtower help', () => {
  it('lists every command and the exit codes', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${cmd} `, 'm'));
    expect(r.stdout).toMatch(/^Exit codes: 0 ok, 1 problems found or failure, 2 usage error\.$/m);
  });

  it.each(COMMANDS)('%s: <command> --help and help <command> show its synopsis and exit codes, and exit 0', async (cmd) => {
    const direct = await runCli(cmd === 'keys' ? ['keys', '--help'] : [cmd, '--help']);
    const viaHelp = await runCli(['help', cmd]);
    for (const r of [direct, viaHelp]) {
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^watchtower ${cmd}`));
      expect(r.stdout).toMatch(/^Exit codes: 0 .*2 usage error/ms);
    }
    expect(direct.stdout).toBe(viaHelp.stdout);
  });

  it('help of an unknown command is a usage error', async () => {
    const r = await runCli(['help', 'frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });
});
