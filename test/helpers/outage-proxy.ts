/**
 * A TCP proxy in front of a real database that the test can take down and bring back: the
 * database "goes away" for the gateway exactly as a crashed server or a cut network would, while
 * the real server keeps running for everyone else.
 *
 * - up:      connections are relayed to the database.
 * - refused: the port is closed (ECONNREFUSED), as when the server process is gone.
 * - silent:  connections are accepted and never answered, as when the network drops packets; the
 *            client's own connect timeout ends them.
 * Going down (either way) drops every open connection. Coming up drops the silent ones too, so a
 * connect attempt stuck there fails at once instead of at its timeout.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export type ProxyMode = 'up' | 'refused' | 'silent';

export interface OutageProxy {
  readonly port: number;
  readonly mode: ProxyMode;
  /** Connections accepted in the current mode. */
  readonly accepted: number;
  /** Silent connections held at once, at most, since the last resetCounts(). */
  readonly maxSilentAtOnce: number;
  /** Silent connections held now (each a connect attempt waiting for a greeting). */
  readonly silentNow: number;
  resetCounts(): void;
  down(how: 'refused' | 'silent'): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function outageProxy(host: string, targetPort: number): Promise<OutageProxy> {
  let mode: ProxyMode = 'up';
  let accepted = 0;
  let maxSilentAtOnce = 0;
  const relayed = new Set<Socket>();
  const silent = new Set<Socket>();
  const drop = (set: Set<Socket>) => {
    for (const s of set) s.destroy();
    set.clear();
  };
  const onConnection = (client: Socket) => {
    accepted++;
    client.on('error', () => client.destroy());
    if (mode === 'silent') {
      silent.add(client);
      maxSilentAtOnce = Math.max(maxSilentAtOnce, silent.size);
      client.on('close', () => silent.delete(client));
      client.resume(); // read and drop what the client sends, so its close is seen
      return;
    }
    const upstream = connect(targetPort, host);
    upstream.on('error', () => upstream.destroy());
    relayed.add(client);
    relayed.add(upstream);
    client.on('close', () => {
      relayed.delete(client);
      upstream.destroy();
    });
    upstream.on('close', () => {
      relayed.delete(upstream);
      client.destroy();
    });
    client.pipe(upstream).pipe(client);
  };
  let server: Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer(onConnection);
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        server = s;
        port = (s.address() as { port: number }).port;
        resolve();
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => {
      const s = server;
      server = undefined;
      if (s === undefined) resolve();
      else s.close(() => resolve());
    });
  await listen();
  return {
    get port() {
      return port;
    },
    get mode() {
      return mode;
    },
    get accepted() {
      return accepted;
    },
    get maxSilentAtOnce() {
      return maxSilentAtOnce;
    },
    get silentNow() {
      return silent.size;
    },
    resetCounts() {
      accepted = 0;
      maxSilentAtOnce = silent.size;
    },
    async down(how) {
      mode = how;
      accepted = 0;
      drop(relayed);
      if (how === 'refused') {
        drop(silent);
        await stopListening();
      } else if (server === undefined) await listen();
    },
    async up() {
      mode = 'up';
      accepted = 0;
      drop(silent);
      if (server === undefined) await listen();
    },
    async close() {
      drop(relayed);
      drop(silent);
      await stopListening();
    },
  };
}
