/**
 * Process metrics (label pid): CPU from pidusage; VMS, shared memory, open fds and I/O bytes from
 * /proc where pidusage has no figure. I/O is every byte the process read or wrote through a system
 * call (rchar/wchar: files, sockets, pipes, page cache or not), as the original counted it and as
 * its I/O panel and HighIoReadActivity expect; read_bytes/write_bytes, storage only, stay near 0
 * for a gateway whose database files are read by other processes or from the page cache. Refreshed on an unref'd timer whose interval is re-read from
 * config on every tick, so a reload changes it. Off Linux only CPU and memory are reported.
 */
import { readFile, readdir } from 'node:fs/promises';
import { totalmem } from 'node:os';
import pidusage from 'pidusage';
import { config, type SettingsReader } from '../config/index.js';
import { getLogger } from '../log/index.js';
import type { Metrics } from './catalogue.js';

const log = getLogger('process.ts');
const HAS_PROC = process.platform === 'linux';
const DEFAULT_INTERVAL = 15;

function intervalSeconds(settings: SettingsReader): number {
  try {
    return settings().process_metrics_interval;
  } catch {
    return DEFAULT_INTERVAL; // config not loaded (embedded use, some tests)
  }
}

/** Named fields of a /proc "key: value" file (status, io); kB suffixes are left to the caller. */
export function parseProcFields(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const n = Number.parseInt(line.slice(i + 1).trim(), 10);
    if (Number.isFinite(n)) out.set(line.slice(0, i), n);
  }
  return out;
}

/** Counters only move forward: add what /proc reports beyond what we already counted. */
function advance(counter: Metrics['ioReadBytesTotal'], pid: string, last: { v: number }, now: number | undefined): void {
  const delta = now === undefined ? 0 : Math.max(0, now - last.v);
  counter.inc({ pid }, delta); // also creates the series at 0 on the first sample
  last.v += delta;
}

export interface ProcessSampler {
  sample(): Promise<void>;
}

/** Keeps the I/O high-water marks between samples. */
export function processSampler(metrics: Metrics, settings: SettingsReader = config): ProcessSampler {
  const pid = String(process.pid);
  const lastRead = { v: 0 };
  const lastWrite = { v: 0 };
  return {
    async sample() {
      // maxage keeps pidusage's previous reading alive across our interval, so CPU is per interval.
      const usage = await pidusage(process.pid, { maxage: intervalSeconds(settings) * 3000 });
      const labels = { pid };
      metrics.cpuUsage.set(labels, usage.cpu);
      metrics.memRssBytes.set(labels, usage.memory);
      metrics.memPercent.set(labels, (usage.memory / totalmem()) * 100);
      if (!HAS_PROC) return;
      const [status, io, fds] = await Promise.all([
        readFile('/proc/self/status', 'utf8'),
        readFile('/proc/self/io', 'utf8').catch(() => ''), // absent without task I/O accounting
        readdir('/proc/self/fd'),
      ]);
      const st = parseProcFields(status);
      const kb = (k: string) => (st.get(k) ?? 0) * 1024;
      metrics.memVmsBytes.set(labels, kb('VmSize'));
      // What statm calls "shared": resident file-backed plus shared-memory pages.
      metrics.memSharedBytes.set(labels, kb('RssFile') + kb('RssShmem'));
      // readdir itself holds one descriptor on the directory while listing it.
      metrics.openFds.set(labels, Math.max(0, fds.length - 1));
      const ioFields = parseProcFields(io);
      advance(metrics.ioReadBytesTotal, pid, lastRead, ioFields.get('rchar'));
      advance(metrics.ioWriteBytesTotal, pid, lastWrite, ioFields.get('wchar'));
    },
  };
}

/** Samples now and then every process_metrics_interval seconds; returns the stop function. */
/** Samples every process_metrics_interval of `settings` (the process config by default). */
export function startProcessMetrics(metrics: Metrics, settings: SettingsReader = config): () => void {
  const sampler = processSampler(metrics, settings);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const tick = async () => {
    try {
      await sampler.sample();
    } catch (err) {
      log.error('task-exc', 'process metrics refresh failed', { error: (err as Error).message });
    }
    if (stopped) return;
    timer = setTimeout(() => void tick(), intervalSeconds(settings) * 1000);
    timer.unref();
  };
  void tick();

  return () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    pidusage.clear(); // drops its history and the file descriptor it keeps on /proc/<pid>/stat
  };
}
