/**
 * Reads and parses config files in a worker thread, so a reload never stalls the event loop
 * while YAML is parsed. Bounded in time and memory; every failure is a ConfigError.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ConfigError } from '../errors.js';
import type { YamlMapping } from './read-file.js';
import type { YamlWorkerInput, YamlWorkerResult } from './yaml-worker.js';

/** Far above the parse time of the largest accepted file, even on a busy machine. */
export const PARSE_TIMEOUT_MS = 10_000;

/** dist/config/yaml-worker.js next to this module, or (running from src under a test runner) the built one. */
function workerPath(): string {
  const sibling = fileURLToPath(new URL('./yaml-worker.js', import.meta.url));
  if (existsSync(sibling)) return sibling;
  const built = fileURLToPath(new URL('../../dist/config/yaml-worker.js', import.meta.url));
  if (existsSync(built)) return built;
  throw new ConfigError(`config reader not found at ${sibling} or ${built}: run "npm run build"`);
}

/** The parsed mappings of `files`, in order; a missing optional file is an empty mapping. */
export function readYamlFilesOffThread(files: YamlWorkerInput['files'], timeoutMs = PARSE_TIMEOUT_MS): Promise<YamlMapping[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerPath(), {
      workerData: { files } satisfies YamlWorkerInput,
      // A 64 KB file needs a few MB; aliases are capped, this bounds whatever else could blow up.
      resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 },
      stdout: true,
      stderr: true,
    });
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
      void worker.terminate();
    };
    const failed = (reason: string) => settle(() => reject(new ConfigError(`config files ${files.map((f) => f.file).join(', ')} ${reason}`)));
    const timer = setTimeout(() => failed(`were not read and parsed within ${timeoutMs / 1000} s`), timeoutMs);
    worker.once('message', (res: YamlWorkerResult) =>
      settle(() => (res.ok ? resolve(res.docs) : reject(new ConfigError(res.message, { file: res.file, keys: res.keys })))),
    );
    // Out of memory, or a crash: the worker's error text is not logged, it may quote the file.
    worker.once('error', (err: NodeJS.ErrnoException) => failed(`could not be parsed (${err.code ?? 'worker error'})`));
    worker.once('exit', () => failed('could not be parsed (reader exited)'));
  });
}
