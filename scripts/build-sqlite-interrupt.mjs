// Compiles native/sqlite-interrupt.c (the sqlite3_interrupt binding SQLite worker threads need) into
// native/build/, against the SQLite headers better-sqlite3 ships. Runs as the package's postinstall.
// Without a C compiler it only warns: the gateway then runs each SQLite connection in a worker
// process instead of a thread (slower, heavier, just as safe).
//
// env CC: the compiler (default: the first of cc, gcc, clang found on PATH).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'sqlite-interrupt.c');
const outDir = join(root, 'native', 'build');
const output = join(outDir, process.platform === 'darwin' ? 'sqlite-interrupt.dylib' : 'sqlite-interrupt.so');

function warn(why) {
  console.warn(`watchtower: SQLite interrupt extension not built (${why}); SQLite connections will run in worker processes`);
}

function headers() {
  const require = createRequire(join(root, 'package.json'));
  const dir = join(dirname(require.resolve('better-sqlite3/package.json')), 'deps', 'sqlite3');
  return existsSync(join(dir, 'sqlite3ext.h')) ? dir : undefined;
}

function compilers() {
  return process.env.CC ? [process.env.CC] : ['cc', 'gcc', 'clang'];
}

function build() {
  if (process.platform === 'win32') return warn('not supported on Windows');
  if (!existsSync(source)) return warn(`${source} is missing`);
  if (existsSync(output) && statSync(output).mtimeMs >= statSync(source).mtimeMs) return;
  let include;
  try {
    include = headers();
  } catch {
    return warn('better-sqlite3 is not installed');
  }
  if (include === undefined) return warn("better-sqlite3's SQLite headers are missing");
  mkdirSync(outDir, { recursive: true });
  const failures = [];
  for (const cc of compilers()) {
    try {
      execFileSync(cc, ['-O2', '-shared', '-fPIC', '-Wall', '-Wextra', '-Werror', '-I', include, '-o', output, source, '-lpthread'], { stdio: ['ignore', 'ignore', 'pipe'] });
      return;
    } catch (err) {
      failures.push(`${cc}: ${err.code === 'ENOENT' ? 'not found' : String(err.stderr ?? err.message).trim().split('\n')[0]}`);
    }
  }
  warn(failures.join('; '));
}

build();
