/**
 * HTTP/1.1 over a bare socket, for requests an HTTP client would refuse to send (malformed, half
 * sent) and for reading the one answer the server gives. Bodies must have a Content-Length.
 */
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body: string;
}

export interface RawConnection {
  send(bytes: string | Buffer): void;
  /** The first complete response on the connection, or a rejection after `timeoutMs`. */
  response(timeoutMs?: number): Promise<RawResponse>;
  close(): void;
}

function parse(buf: Buffer): RawResponse | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
  const length = Number(headers['content-length'] ?? NaN);
  if (!Number.isInteger(length) || buf.length < end + 4 + length) return undefined;
  return { status: Number(statusLine.split(' ')[1]), headers, body: buf.subarray(end + 4, end + 4 + length).toString('utf8') };
}

export async function openRaw(port: number): Promise<RawConnection> {
  const socket: Socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buf = Buffer.alloc(0);
  let ended: Error | undefined;
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of waiters) w();
  };
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    wake();
  });
  // The server may close (even reset) after answering, while this side still writes a large request.
  socket.on('error', (err) => {
    ended ??= err;
    wake();
  });
  socket.on('close', () => {
    ended ??= new Error('connection closed');
    wake();
  });
  return {
    send: (bytes) => socket.write(bytes),
    response: (timeoutMs = 5_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const res = parse(buf);
          if (res !== undefined) done(() => resolve(res));
          else if (ended !== undefined) done(() => reject(new Error(`${ended?.message} without a complete response; got: ${buf.toString('latin1').slice(0, 300)}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`no complete response within ${timeoutMs} ms; got: ${buf.toString('latin1').slice(0, 300)}`))), timeoutMs);
        const done = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      }),
    close: () => socket.destroy(),
  };
}

/** Sends `bytes` on a fresh connection and returns the one response. */
export async function rawRequest(port: number, bytes: string | Buffer): Promise<RawResponse> {
  const conn = await openRaw(port);
  try {
    conn.send(bytes);
    return await conn.response();
  } finally {
    conn.close();
  }
}
