/**
 * Worker thread: reads and parses config files off the event loop (YAML costs milliseconds per
 * kilobyte, and a reload must not hold up requests). Posts the mappings, or the ConfigError's parts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ConfigError } from '../errors.js';
import { readYamlFile } from './read-file.js';

export interface YamlWorkerInput {
  files: { file: string; optional: boolean }[];
}
export type YamlWorkerResult =
  | { ok: true; docs: Record<string, unknown>[] }
  | { ok: false; message: string; file?: string; keys: string[] };

const { files } = workerData as YamlWorkerInput;
let result: YamlWorkerResult;
try {
  result = { ok: true, docs: files.map((f) => readYamlFile(f.file, f.optional)) };
} catch (err) {
  result =
    err instanceof ConfigError
      ? { ok: false, message: err.message, file: err.file, keys: err.keys }
      : { ok: false, message: 'config files could not be read', keys: [] };
}
parentPort!.postMessage(result);
