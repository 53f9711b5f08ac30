/**
 * The gateway's one HTTP server, which outlives the Fastify apps it serves. Each app is built with
 * Fastify's `serverFactory` returning this server, and the server's request handler forwards each
 * request to the active app. Switching apps (SIGHUP: new endpoint files) is one assignment: a
 * request already inside the old app finishes there, the next one, also on a kept-alive
 * connection, goes to the new app. The socket is never closed or bound again, so no connection is
 * refused or reset by a switch.
 */
import type { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, FastifyServerFactory } from 'fastify';
import { getLogger } from '../log/index.js';
import type { ExpressLane } from './express-lane.js';
import { fastifyTimeouts, nodeServerTimeouts, type TimeoutSettings } from './server-timeouts.js';

const log = getLogger('shared-server.ts');

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
type Listener = (...args: unknown[]) => void;
type Listeners = Array<[string | symbol, Listener]>;

/** One app built over the shared server, with the requests it has in flight. */
export class MountedApp {
  /** Asked before the app (src/http/express-lane.ts): answers a repeated cache hit without Fastify. */
  express: ExpressLane | undefined;
  private inFlight = 0;
  private idle: Array<() => void> = [];
  private closed: Promise<void> | undefined;

  constructor(
    readonly app: FastifyInstance,
    readonly handler: Handler,
    /** The server listeners the app's build added ('clientError', 'checkExpectation'): on only while it is active. */
    readonly listeners: Listeners,
  ) {}

  get requestsInFlight(): number {
    return this.inFlight;
  }

  started(): void {
    this.inFlight++;
  }

  ended(): void {
    if (--this.inFlight > 0) return;
    for (const wake of this.idle.splice(0)) wake();
  }

  /** Resolves true once no request is inside this app, false when `ms` passed first. */
  drained(ms: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.idle = this.idle.filter((w) => w !== wake);
        resolve(false);
      }, ms);
      timer.unref();
      this.idle.push(wake);
    });
  }

  /** Closes the app (its hooks and routes), once; the shared server stays open. */
  close(): Promise<void> {
    this.closed ??= this.app.close();
    return this.closed;
  }
}

/** Every listener the server has now, per event. */
function listenersOf(server: Server): Listeners {
  return server.eventNames().flatMap((e) => server.listeners(e).map((l): [string | symbol, Listener] => [e, l as Listener]));
}

export class SharedServer {
  readonly server: Server;
  private active: MountedApp | undefined;

  /** The server's timeouts come from `cfg` as Fastify would apply them to a server it created. */
  constructor(cfg: TimeoutSettings) {
    // Node would answer a Host-less HTTP/1.1 request with a bare 400; registerClientErrors does instead.
    this.server = createServer({ requireHostHeader: false, ...nodeServerTimeouts(cfg) }, (req, res) => this.dispatch(req, res));
    const f = fastifyTimeouts(cfg);
    this.server.keepAliveTimeout = f.keepAliveTimeout;
    this.server.requestTimeout = f.requestTimeout;
    this.server.setTimeout(f.connectionTimeout);
  }

  private dispatch(req: IncomingMessage, res: ServerResponse): void {
    const mounted = this.active;
    if (!mounted) {
      res.writeHead(503, { 'Retry-After': '1' }).end();
      return;
    }
    // Answered at once and complete: not a request in flight inside the app.
    if (mounted.express !== undefined && this.expressAnswered(mounted.express, req, res)) return;
    mounted.started();
    // 'close' comes once for every response: finished, or the client gone.
    res.once('close', () => mounted.ended());
    mounted.handler.call(this.server, req, res);
  }

  /** A fault of the lane leaves the request to the app, or (headers sent already) ends its connection; it never escapes the listener. */
  private expressAnswered(lane: ExpressLane, req: IncomingMessage, res: ServerResponse): boolean {
    try {
      return lane(req, res);
    } catch (err) {
      log.error('express-lane-err', `express lane failed on ${req.method ?? ''} ${String(req.url).slice(0, 200)}`, { error: err as Error });
      if (!res.headersSent) return false;
      res.destroy();
      return true;
    }
  }

  /** The active app; throws before the first activate(). */
  get current(): MountedApp {
    if (!this.active) throw new Error('no app is active on the server');
    return this.active;
  }

  /**
   * Builds an app over this server (`build` passes the factory to Fastify and awaits ready()).
   * The server listeners its build added are taken off again until activate(), so the active
   * app alone answers early client errors. A build that throws leaves the server as it was.
   */
  async mount(build: (serverFactory: FastifyServerFactory) => Promise<FastifyInstance>): Promise<MountedApp> {
    const before = new Set(listenersOf(this.server).map(([, l]) => l));
    let handler: Handler | undefined;
    const detachAdded = (): Listeners => {
      const added = listenersOf(this.server).filter(([, l]) => !before.has(l));
      for (const [e, l] of added) this.server.off(e, l);
      return added;
    };
    let app: FastifyInstance;
    try {
      app = await build((h) => {
        handler = h;
        return this.server;
      });
    } catch (err) {
      detachAdded();
      throw err;
    }
    const added = detachAdded();
    if (!handler) throw new Error('the app was not built with the shared server factory');
    return new MountedApp(app, handler, added);
  }

  /** Makes `next` the app new requests go to; returns the one it replaces (still draining). */
  activate(next: MountedApp): MountedApp | undefined {
    const previous = this.active;
    for (const [e, l] of previous?.listeners ?? []) this.server.off(e, l);
    // As EventEmitter: http.Server's typed overloads take no symbol events.
    const emitter: EventEmitter = this.server;
    for (const [e, l] of next.listeners) emitter.on(e, l);
    this.active = next;
    return previous;
  }

  /** Listens on host:port; resolves to the bound address. */
  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const failed = (err: Error) => reject(err);
      this.server.once('error', failed);
      this.server.listen({ host, port }, () => {
        this.server.off('error', failed);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting and closes idle connections; resolves once every connection has ended. */
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** `http://host:port` of a bound address. */
export function addressUrl(a: AddressInfo): string {
  return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
}
