/**
 * One HTTP request from a chosen local address (127.0.0.2, 127.0.0.3... all reach a loopback
 * listener on Linux; ::1 for IPv6), on its own connection, bounded by a timeout: so a test can be
 * several clients without leaving the machine.
 */
import { request } from 'node:http';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Milliseconds from sending to the end of the answer. */
  ms: number;
}

export interface RequestOptions {
  from?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
}

export function call(url: string, opts: RequestOptions = {}): Promise<Answer> {
  const u = new URL(url);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port,
        path: u.pathname + u.search,
        method: opts.method ?? 'GET',
        headers: opts.headers,
        localAddress: opts.from,
        agent: false,
        timeout: opts.timeoutMs ?? 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms: performance.now() - started }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${opts.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The `detail` of an error body. */
export function detailOf(a: Answer): string {
  try {
    return String((JSON.parse(a.body) as { detail?: unknown }).detail);
  } catch {
    return a.body;
  }
}
