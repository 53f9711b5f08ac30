/**
 * A redis-server of a test's own on a free loopback port (no persistence), so the test can stop it
 * and start it again on the same port without disturbing the Redis other tests use.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './gateway-process.js';
import { waitFor } from './wait.js';

/** The Redis CI runs (.ci/run) for tests that only need one to be there. */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface OwnRedis {
  readonly url: string;
  readonly port: number;
  /** Kills the server (SIGKILL: as a crash, nothing flushed) and waits for its exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty; resolves once it answers. */
  start(): Promise<void>;
  /** Freezes it (SIGSTOP): connections stay open, nothing is answered; stop() still ends it. */
  pause(): void;
}

async function answering(url: string): Promise<void> {
  await waitFor('redis-server answering', async () => {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined); // refused until the server listens: the wait tries again
    try {
      await probe.connect();
      return (await probe.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      probe.disconnect();
    }
  });
}

/** Starts one; stop it with stop() (also in afterAll: a server left running outlives the test run). */
export async function ownRedis(): Promise<OwnRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let server: ChildProcess | undefined;
  const own: OwnRedis = {
    url,
    port,
    async start() {
      if (server) return;
      server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      await answering(url);
    },
    pause() {
      server?.kill('SIGSTOP');
    },
    async stop() {
      const s = server;
      server = undefined;
      if (!s || s.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => s.once('exit', () => resolve()));
      s.kill('SIGKILL');
      await exited;
    },
  };
  await own.start();
  return own;
}
