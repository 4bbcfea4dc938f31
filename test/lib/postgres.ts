// A throwaway PostgreSQL server for tests: Debian's binaries, a fresh cluster in a temp dir,
// on loopback only (a free port, the socket in the temp dir), password logins over TCP as a
// controller would make them. stop() removes every trace.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';

const run = promisify(execFile);

const PG_LIB = '/usr/lib/postgresql';
const USER = 'storm';
const DATABASE = 'storm';

export interface Postgres {
  /** postgres://storm:PASSWORD@127.0.0.1:PORT/storm */
  url: string;
  stop(): Promise<void>;
}

/** The newest installed server's bin directory (Debian installs them side by side by major). */
function binDir(): string {
  const majors = existsSync(PG_LIB) ? readdirSync(PG_LIB).filter((d) => /^\d+$/.test(d) && existsSync(path.join(PG_LIB, d, 'bin', 'pg_ctl'))) : [];
  const newest = majors.sort((a, b) => Number(b) - Number(a))[0];
  if (newest === undefined) {
    throw new Error(`PostgreSQL's server binaries are missing (no ${PG_LIB}/*/bin/pg_ctl): run \`bash scripts/install.sh\` (it installs Debian's postgresql)`);
  }
  return path.join(PG_LIB, newest, 'bin');
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no TCP port for PostgreSQL');
  return address.port;
}

async function id(flag: '-u' | '-g', user: string): Promise<number> {
  return Number((await run('id', [flag, user])).stdout.trim());
}

async function logTail(file: string, lines = 30): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '(no server log)');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export async function startPostgres(): Promise<Postgres> {
  const bin = binDir();
  // PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres user.
  const asRoot = process.getuid?.() === 0;
  const pgRun = (tool: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', path.join(bin, tool), ...args]) : run(path.join(bin, tool), args);
  const dir = await mkdtemp(path.join(tmpdir(), 'storm-pg-'));
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  const password = randomBytes(12).toString('hex');
  let running = false;
  // A test process that ends without stop() (a failed hook, process.exit) takes its server along.
  const orphaned = (): void => {
    if (!running) return;
    const argv = [path.join(bin, 'pg_ctl'), 'stop', '-D', data, '-m', 'immediate', '-w'];
    try {
      if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', ...argv], { stdio: 'ignore' });
      else execFileSync(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', orphaned);
  const stop = async (): Promise<void> => {
    process.removeListener('exit', orphaned);
    if (running) {
      running = false;
      await pgRun('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w']).catch(() => pgRun('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w']).catch(() => {}));
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const pwfile = path.join(dir, 'pwfile');
    await writeFile(pwfile, password + '\n', { mode: 0o600 });
    if (asRoot) {
      const [uid, gid] = [await id('-u', 'postgres'), await id('-g', 'postgres')];
      for (const owned of [dir, pwfile]) await chown(owned, uid, gid);
    }
    // Password (SCRAM) over TCP, as a controller logs in; trust on the temp dir's socket.
    await pgRun('initdb', ['-D', data, '-U', USER, `--pwfile=${pwfile}`, '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
    const port = await freePort();
    // Durability is not under test (the client is what tests kill, never the server): no fsync.
    const options = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
    running = true;
    await pgRun('pg_ctl', ['start', '-D', data, '-l', log, '-w', '-t', '30', '-o', options]);
    await pgRun('createdb', ['-h', dir, '-p', String(port), '-U', USER, DATABASE]);
    return { url: `postgres://${USER}:${password}@127.0.0.1:${port}/${DATABASE}`, stop };
  } catch (err) {
    // execFile's message carries the tool's stderr; the server's own reasons are in its log.
    const tail = await logTail(log);
    await stop();
    throw new Error(`PostgreSQL did not start: ${err instanceof Error ? err.message.trimEnd() : String(err)}\n--- server log (tail) ---\n${tail}`, { cause: err });
  }
}
