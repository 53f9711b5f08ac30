/**
 * `watchtower stat` in a real terminal: tmux runs a shell in a detached session, the test types the
 * command into it and reads the screen with capture-pane. Under load the numbers move and settle
 * back once it ends; q and Ctrl-C end the view with exit code 0 and give the terminal back (main
 * screen with the shell's lines again, cursor shown, the tty's settings as before: echo and line
 * editing on); a gateway that goes away is shown unreachable and read again once it is back.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort, ROOT, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { runLoad } from '../helpers/load-client.js';
import { waitFor } from '../helpers/wait.js';
import { describeWith } from '../stack/helpers.js';

const CLI = join(ROOT, 'dist', 'cli.js');
const PROMPT = 'stat-shell$ ';
/** A tmux server of this test's own, so nothing else's sessions are touched. */
const SOCKET = `wt-stat-test-${process.pid}`;
/** Where each shell saves its tty settings before stat runs. */
const TTY_DIR = mkdtempSync(join(tmpdir(), 'wt-stat-tty-'));

function tmux(...args: string[]): string {
  const r = spawnSync('tmux', ['-L', SOCKET, '-f', '/dev/null', ...args], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}${r.error?.message ?? ''}`);
  return r.stdout;
}

const screen = (session: string) => tmux('capture-pane', '-p', '-t', session);
/** Whether the alternate screen is on, whether the cursor is shown, and the pane's foreground command. */
function pane(session: string): { alternate: boolean; cursor: boolean; command: string } {
  const [alt, cursor, command] = tmux('display-message', '-p', '-t', session, '#{alternate_on} #{cursor_flag} #{pane_current_command}').trim().split(' ');
  return { alternate: alt === '1', cursor: cursor === '1', command };
}

/** The Q/S column of a resource's row on the screen, or undefined when the row is not there. */
function queriesPerSecond(text: string, rid: string): number | undefined {
  const row = text.split('\n').find((l) => l.startsWith(`${rid} `));
  const cells = row?.trim().split(/\s+/);
  return cells ? Number(cells[3]) : undefined;
}

let sessions = 0;
/** A shell in a new 160x50 session, its tty settings saved, `stat <args>` typed into it and on the screen. */
async function startStat(args: string): Promise<string> {
  const session = `s${++sessions}`;
  tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '50', 'env', `PS1=${PROMPT}`, 'bash', '--norc', '--noprofile');
  tmux('send-keys', '-t', session, `stty -g > ${TTY_DIR}/${session}; ${process.execPath} ${CLI} stat ${args}`, 'Enter');
  await waitFor('stat drawing on the alternate screen', () => pane(session).alternate && screen(session).includes('q: quit'), { timeout: 20_000 });
  expect(pane(session).cursor).toBe(false);
  return session;
}

/** After the view ended: the shell is back in front on the main screen, and says how stat exited and whether the tty is as before. */
async function expectRestored(session: string): Promise<void> {
  await waitFor('the shell in front again', () => pane(session).command === 'bash', { timeout: 10_000 });
  const p = pane(session);
  expect(p.alternate).toBe(false);
  expect(p.cursor).toBe(true);
  tmux('send-keys', '-t', session, `echo "exit=$? tty=$([ "$(stty -g)" = "$(cat ${TTY_DIR}/${session})" ] && echo same || echo changed)"`, 'Enter');
  const text = await waitFor('the echo', () => (/exit=\d+ tty=\w+/.test(screen(session)) ? screen(session) : undefined));
  expect(text).toMatch(/exit=0 tty=same/);
  // The main screen as the shell left it: the typed command line, and none of the view.
  expect(text).toContain(`${PROMPT}stty -g`);
  expect(text).not.toContain('RESOURCE');
}

describeWith('watchtower stat in a real terminal (tmux)', ['tmux'], () => {
  let gw: GatewayProcess;

  beforeAll(async () => {
    gw = await startGateway();
  });

  afterAll(async () => {
    try {
      tmux('kill-server');
    } catch {
      // no session left
    }
    await gw?.stop();
    rmSync(TTY_DIR, { recursive: true, force: true });
  });

  it('shows the numbers moving under load and settling after it; q quits and restores the terminal', async () => {
    const session = await startStat(gw.url);
    await waitFor('the gateway read', () => screen(session).includes('1/1 reachable'), { timeout: 20_000 });
    const seen = new Set<number>();
    const load = runLoad({ url: gw.url, paths: ['/sqlite-json', '/sqlite-json?limit=500'], clients: 4, durationMs: 6000 });
    try {
      await waitFor('several different queries/s under load', () => {
        const qps = queriesPerSecond(screen(session), 'sqlite_traffic');
        if (qps !== undefined && qps > 0) seen.add(qps);
        return seen.size >= 2;
      }, { timeout: 20_000, interval: 300 });
      expect(screen(session)).toMatch(/^\/sqlite-json\s+\d/m);
    } finally {
      await load;
    }
    await waitFor('queries/s back to 0 once the load ended', () => queriesPerSecond(screen(session), 'sqlite_traffic') === 0, { timeout: 20_000, interval: 300 });
    tmux('send-keys', '-t', session, 'q');
    await expectRestored(session);
  }, 90_000);

  it('Ctrl-C quits and restores the terminal', async () => {
    const session = await startStat(gw.url);
    tmux('send-keys', '-t', session, 'C-c');
    await expectRestored(session);
  }, 60_000);

  it('a gateway that goes away is shown unreachable and read again when it is back', async () => {
    const port = await freePort();
    let other = await startGateway({ env: { PORT: String(port) } });
    const session = await startStat(`http://127.0.0.1:${port}`);
    try {
      await waitFor('the gateway read', () => screen(session).includes('1/1 reachable'), { timeout: 20_000 });
      await other.stop();
      await waitFor('UNREACHABLE on the screen', () => /UNREACHABLE/.test(screen(session)) && screen(session).includes('0/1 reachable'), { timeout: 20_000 });
      expect(pane(session).command).toBe('node');
      other = await startGateway({ env: { PORT: String(port) } });
      await waitFor('the gateway read again', () => screen(session).includes('1/1 reachable'), { timeout: 20_000 });
    } finally {
      await other.stop();
    }
    tmux('send-keys', '-t', session, 'q');
    await expectRestored(session);
  }, 120_000);
});
