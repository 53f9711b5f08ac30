import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildSettings, setConfig } from '../../src/config/index.js';
import { createMetrics } from '../../src/metrics/catalogue.js';
import { parseProcFields, processSampler, startProcessMetrics } from '../../src/metrics/process.js';
import { parseExposition } from './exposition.js';

const PROCESS_GAUGES = ['wt_cpu_usage', 'wt_mem_rss_bytes', 'wt_mem_vms_bytes', 'wt_mem_shared_bytes', 'wt_mem_percent', 'wt_open_fds'];
const linux = process.platform === 'linux';

let stop: (() => void) | undefined;
afterEach(() => stop?.());

describe('process metrics', () => {
  it('parses /proc "key: value" files', () => {
    const f = parseProcFields('VmSize:\t  3896 kB\nRssFile:   1860 kB\nread_bytes: 42\nName:\tnode\n');
    expect(f.get('VmSize')).toBe(3896);
    expect(f.get('read_bytes')).toBe(42);
    expect(f.has('Name')).toBe(false);
  });

  it.runIf(linux)('reports plausible values labelled with this pid', async () => {
    const m = createMetrics();
    const sampler = processSampler(m);
    await sampler.sample();
    // 300 ms of work on this thread between the samples: the CPU figure covers that interval.
    const busyUntil = performance.now() + 300;
    while (performance.now() < busyUntil);
    await sampler.sample();
    const e = parseExposition(await m.registry.metrics());
    const pid = String(process.pid);
    const value = (name: string) => {
      const s = e.samples.filter((x) => x.name === name);
      expect(s.map((x) => x.labels), name).toEqual([{ pid }]);
      return s[0].value;
    };
    const rss = value('wt_mem_rss_bytes');
    expect(rss).toBeGreaterThan(10e6);
    expect(value('wt_mem_vms_bytes')).toBeGreaterThan(rss);
    expect(value('wt_mem_shared_bytes')).toBeGreaterThan(0);
    expect(value('wt_mem_shared_bytes')).toBeLessThanOrEqual(rss);
    expect(value('wt_mem_percent')).toBeGreaterThan(0);
    expect(value('wt_mem_percent')).toBeLessThan(100);
    // A percentage of one core, as pidusage reports it; well above zero after a busy interval even on a loaded machine.
    expect(value('wt_cpu_usage')).toBeGreaterThan(20);
    expect(value('wt_open_fds')).toBeGreaterThan(2);
    // Since the process started it has read its modules and written to the test runner.
    expect(value('wt_io_read_bytes_total')).toBeGreaterThan(0);
    expect(value('wt_io_write_bytes_total')).toBeGreaterThan(0);
    for (const g of PROCESS_GAUGES) expect(e.types.get(g)).toBe('gauge');
  });

  it.runIf(linux)('counts every byte read and written, sockets included (rchar/wchar), as the original did', async () => {
    const m = createMetrics();
    const sampler = processSampler(m);
    const value = async (name: string) => {
      const s = parseExposition(await m.registry.metrics()).samples.find((x) => x.name === name);
      return s?.value ?? NaN;
    };
    await sampler.sample();
    const read0 = await value('wt_io_read_bytes_total');
    const written0 = await value('wt_io_write_bytes_total');
    // 4 MB through a loopback socket: this process writes it and reads it back, touching no storage.
    const size = 4 * 1024 * 1024;
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    const [peer] = await accepted;
    let received = 0;
    const drained = new Promise<void>((resolve) => {
      peer.on('data', (d: Buffer) => {
        received += d.length;
        if (received >= size) resolve();
      });
    });
    client.end(Buffer.alloc(size, 1));
    await drained;
    peer.destroy();
    server.close();
    await sampler.sample();
    expect((await value('wt_io_read_bytes_total')) - read0).toBeGreaterThanOrEqual(size);
    expect((await value('wt_io_write_bytes_total')) - written0).toBeGreaterThanOrEqual(size);
  });

  it('samples at once and then every process_metrics_interval, and stop() ends the sampling', async () => {
    setConfig(buildSettings({ process_metrics_interval: 0.05, resource_ids: [] }, {}, { env: {} }));
    const m = createMetrics();
    const set = vi.spyOn(m.memRssBytes, 'set');
    stop = startProcessMetrics(m);
    await expect.poll(() => m.registry.metrics(), { timeout: 5000 }).toContain(`wt_mem_rss_bytes{pid="${process.pid}"}`);
    await expect.poll(() => set.mock.calls.length, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
    stop();
    stop = undefined;
    const atStop = set.mock.calls.length;
    // Ten intervals with nothing to poll for: stopped, the sampler must stay silent (one sample
    // already under way when stop() came may still finish).
    await new Promise((r) => setTimeout(r, 500));
    expect(set.mock.calls.length - atStop).toBeLessThanOrEqual(1);
  });
});
