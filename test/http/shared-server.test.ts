/**
 * The server the gateway's apps share (src/http/shared-server.ts), with plain Fastify apps over
 * real HTTP: a switch sends the next request, also on a kept-alive connection, to the new app while
 * a request inside the old one finishes there; only the active app's server listeners are
 * attached, however many switches; drained() waits for the old app's last request; a build that
 * throws leaves the server as it was; the active app's express lane is asked first, and a lane that
 * throws leaves the request to the app (or, its headers sent, ends the connection) instead of
 * taking the process down.
 */
import { Agent, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyServerFactory } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { flushLogs, setLogDestination } from '../../src/log/index.js';
import { SharedServer } from '../../src/http/shared-server.js';

const TIMEOUTS = { http_headers_timeout: 10, http_request_timeout: 30, http_keep_alive_timeout: 5, http_idle_timeout: 0 };

/** An app answering its name on /, and on /slow once release() is called. */
function appNamed(name: string, serverFactory: FastifyServerFactory, gate?: Promise<void>): FastifyInstance {
  const app = Fastify({ serverFactory });
  app.server.on('checkExpectation', () => undefined);
  app.get('/', async () => ({ name }));
  app.get('/slow', async () => {
    await gate;
    return { name };
  });
  return app;
}

function get(port: number, path: string, agent: Agent): Promise<{ status: number; body: string; socket: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, socket: req.socket }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    req.end();
  });
}

let shared: SharedServer | undefined;
afterEach(async () => {
  if (shared?.server.listening) {
    shared.server.closeAllConnections();
    await shared.close();
  }
  shared = undefined;
});

describe('SharedServer', () => {
  it('switches apps without touching connections: the old app finishes its request, the next one on the same connection goes to the new app', async () => {
    shared = new SharedServer(TIMEOUTS);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = await shared.mount(async (f) => {
      const app = appNamed('first', f, gate);
      await app.ready();
      return app;
    });
    shared.activate(first);
    const { port } = await shared.listen('127.0.0.1', 0);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const slowAgent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const before = await get(port, '/', agent);
      expect(JSON.parse(before.body)).toEqual({ name: 'first' });
      const slow = get(port, '/slow', slowAgent);
      await expect.poll(() => first.requestsInFlight).toBe(1);

      const second = await shared.mount(async (f) => {
        const app = appNamed('second', f);
        await app.ready();
        return app;
      });
      expect(shared.activate(second)).toBe(first);
      const after = await get(port, '/', agent);
      expect(JSON.parse(after.body)).toEqual({ name: 'second' });
      expect(after.socket).toBe(before.socket);

      // The old app still holds its request; drained() waits for it, bounded.
      expect(await first.drained(50)).toBe(false);
      const drained = first.drained(5000);
      release();
      expect(JSON.parse((await slow).body)).toEqual({ name: 'first' });
      expect(await drained).toBe(true);
      await first.close();
      expect(JSON.parse((await get(port, '/', agent)).body)).toEqual({ name: 'second' });
    } finally {
      agent.destroy();
      slowAgent.destroy();
    }
  });

  it('keeps only the active app\'s server listeners, however many switches; a failed build adds none', async () => {
    shared = new SharedServer(TIMEOUTS);
    const counts = () => [shared!.server.listenerCount('clientError'), shared!.server.listenerCount('checkExpectation')];
    for (let i = 0; i < 15; i++) {
      const mounted = await shared.mount(async (f) => {
        const app = appNamed(`app${i}`, f);
        await app.ready();
        return app;
      });
      const previous = shared.activate(mounted);
      await previous?.close();
      expect(counts()).toEqual([1, 1]);
    }
    await expect(
      shared.mount((f) => {
        appNamed('broken', f);
        return Promise.reject(new Error('bad endpoint file'));
      }),
    ).rejects.toThrow('bad endpoint file');
    expect(counts()).toEqual([1, 1]);
  });

  it('asks the express lane first; a lane that throws leaves the request to the app or ends its connection', async () => {
    shared = new SharedServer(TIMEOUTS);
    const mounted = await shared.mount(async (f) => {
      const app = appNamed('app', f);
      await app.ready();
      return app;
    });
    shared.activate(mounted);
    const { port } = await shared.listen('127.0.0.1', 0);
    const logged: string[] = [];
    setLogDestination(new Writable({ write: (c: Buffer, _e, cb) => (logged.push(c.toString()), cb()) }));
    const agent = new Agent({ keepAlive: false });
    try {
      mounted.express = (req: IncomingMessage, res: ServerResponse) => {
        if (req.url === '/fast') {
          res.writeHead(200, ['content-type', 'text/plain']).end('fast');
          return true;
        }
        if (req.url === '/half') {
          res.writeHead(200, ['content-length', '10']);
          throw new Error('broken after the headers');
        }
        if (req.url === '/') throw new Error('broken before answering');
        return false;
      };
      expect((await get(port, '/fast', agent)).body).toBe('fast');
      expect(mounted.requestsInFlight).toBe(0);
      expect(JSON.parse((await get(port, '/', agent)).body)).toEqual({ name: 'app' });
      await expect(get(port, '/half', agent)).rejects.toThrow();
      expect(shared.server.listening).toBe(true);
      flushLogs();
      expect(logged.join('')).toContain('tag=express-lane-err msg="express lane failed on GET /"');
    } finally {
      agent.destroy();
      setLogDestination(process.stdout);
    }
  });
});
