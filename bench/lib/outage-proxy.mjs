// A TCP proxy in front of a database that a benchmark takes down and brings back (the JavaScript
// twin of test/helpers/outage-proxy.ts): 'refused' closes the port, 'silent' accepts and never
// answers; going down drops every connection, coming up drops the silent ones.
import { connect, createServer } from 'node:net';

export async function outageProxy(host, targetPort) {
  const relayed = new Set();
  const silent = new Set();
  let mode = 'up';
  let server;
  let port = 0;
  const drop = (set) => {
    for (const s of set) s.destroy();
    set.clear();
  };
  const onConnection = (client) => {
    client.on('error', () => client.destroy());
    if (mode === 'silent') {
      silent.add(client);
      client.on('close', () => silent.delete(client));
      client.resume();
      return;
    }
    const upstream = connect(targetPort, host);
    upstream.on('error', () => upstream.destroy());
    for (const [a, b] of [[client, upstream], [upstream, client]]) {
      relayed.add(a);
      a.on('close', () => {
        relayed.delete(a);
        b.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  };
  const listen = () =>
    new Promise((resolve, reject) => {
      const s = createServer(onConnection);
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        server = s;
        port = s.address().port;
        resolve();
      });
    });
  const stopListening = () => new Promise((resolve) => (server ? server.close(() => resolve()) : resolve(), (server = undefined)));
  await listen();
  return {
    get port() {
      return port;
    },
    async down(how) {
      mode = how;
      drop(relayed);
      if (how === 'refused') {
        drop(silent);
        await stopListening();
      } else if (!server) await listen();
    },
    async up() {
      mode = 'up';
      drop(silent);
      if (!server) await listen();
    },
    async close() {
      drop(relayed);
      drop(silent);
      await stopListening();
    },
  };
}
