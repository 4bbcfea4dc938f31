// `storm fetch`: fill the image cache ahead of `terraform apply`, whose own output shows only
// elapsed time while a multi-GiB image downloads.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ImageSourceError, defaultCacheDir, fetchImage, formatBytes, formatProgressLine, progressFields } from '../drivers/images/fetch.ts';
import type { Progress } from '../drivers/images/fetch.ts';
import { LibvirtError, LibvirtUnreachableError } from '../drivers/errors.ts';
import { LayerFormatError } from '../drivers/layers.ts';
import type { Logger } from '../contract.ts';
import { installSharedLayer } from '../host/layers.ts';
import { baseVolumeName } from '../host/names.ts';
import { parseServerId } from '../host/refs.ts';
import { HostSession } from '../host/session.ts';
import { nameValidator } from '../schema/validators.ts';

/** The CLI's logger: warnings reach the person, the rest stays quiet. */
function cliLog(io: FetchCommandIO): Logger {
  const quiet = () => {};
  return { debug: quiet, info: quiet, error: (m) => io.stderr.write(`storm fetch: ${m}\n`), warn: (m) => io.stderr.write(`storm fetch: ${m}\n`) };
}

export const fetchUsage = 'storm fetch <url|path> --sha256 <hex> [--cache-dir DIR] [--server ID --base NAME]';

export const fetchHelp = `Usage: ${fetchUsage}

Download an appliance image into storm's image cache and verify its sha256, so that a later
\`terraform apply\` finds it there instead of downloading it. Prints the cached file's path.

  <url|path>        https:// or http:// URL, file:// URL, or a local path (local files are
                    only verified and used where they are, not copied)
  --sha256 <hex>    the image's expected sha256 (64 hex digits)
  --cache-dir DIR   cache directory (default: $STORM_CACHE_DIR/images, else
                    $XDG_CACHE_HOME/storm/images, else ~/.cache/storm/images)
  --server ID       also install the image on that server, a storm_appliance_server id
                    (NAME@LIBVIRT_URI), as its base layer, the way storm_appliance does: the
                    next \`terraform apply\` finds the base there and only adds the layers above
  --base NAME       the base name it is installed as (the name in storm_appliance's base block)

An interrupted download (Ctrl-C, lost connection) is kept and resumed by the next run.
Exit status: 0 verified, 1 download or checksum failure, 2 usage error, 130 interrupted.
`;

/** Where the command writes; tests pass fakes, `isTTY`/`columns` choose the bar. */
export interface FetchCommandIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  /** Replaces SIGINT handling when given. */
  signal?: AbortSignal;
  /** Seconds between plain progress lines when stderr is not a terminal. */
  plainIntervalSeconds?: number;
}

export async function fetchCommand(args: string[], io: FetchCommandIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const usageError = (message: string): number => {
    io.stderr.write(`storm fetch: ${message}\nUsage: ${fetchUsage}\nRun \`storm fetch --help\` for details.\n`);
    return 2;
  };
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        sha256: { type: 'string' },
        'cache-dir': { type: 'string' },
        server: { type: 'string' },
        base: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    return usageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(fetchHelp);
    return 0;
  }
  if (positionals.length === 0) return usageError('missing the image URL or path');
  if (positionals.length > 1) return usageError(`expected one image URL or path, got ${positionals.length}: ${positionals.join(' ')}`);
  if (!values.sha256) return usageError('--sha256 is required: storm only installs images it can verify');
  const url = positionals[0]!;
  const cacheDir = values['cache-dir'] ?? defaultCacheDir();
  if (Boolean(values.server) !== Boolean(values.base)) return usageError('--server and --base go together: the server to install on and the base name to install as');
  const server = values.server ? parseServerId(values.server) : null;
  if (values.server && !server) return usageError(`--server "${values.server}" is not a storm server id (NAME@LIBVIRT_URI, e.g. blade1@qemu+ssh://root@blade1/system)`);
  if (values.base && nameValidator(values.base)) return usageError(`--base "${values.base}": ${nameValidator(values.base)}`);

  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  const signal = io.signal ?? controller.signal;
  if (!io.signal) process.once('SIGINT', onSigint);

  const display = new ProgressDisplay(io.stderr, labelFor(url), io.plainIntervalSeconds ?? 5);
  try {
    const image = await fetchImage({ url, sha256: values.sha256 }, { cacheDir, signal, onProgress: (p) => display.update(p) });
    display.finish();
    if (image.fromCache) io.stderr.write(`${display.label}: already in the cache (${formatBytes(image.size)})\n`);
    if (server && values.base) {
      const volume = baseVolumeName(values.base, image.sha256);
      io.stderr.write(`${display.label}: installing on ${server.name} as ${volume} (${formatBytes(image.size)})…\n`);
      const started = Date.now();
      const { created } = await installSharedLayer(new HostSession(), server.uri, volume, image.sha256, async () => image.path, cliLog(io));
      io.stderr.write(created ? `${display.label}: installed on ${server.name} in ${((Date.now() - started) / 1000).toFixed(1)} s\n` : `${display.label}: already on ${server.name}\n`);
      io.stdout.write(`${volume}@${values.server}\n`);
      return 0;
    }
    io.stdout.write(image.path + '\n');
    return 0;
  } catch (e) {
    display.finish();
    if (signal.aborted) {
      io.stderr.write(`storm fetch: interrupted; the partial download is kept in ${cacheDir} and the next \`storm fetch\` resumes it\n`);
      return 130;
    }
    if (e instanceof ImageSourceError || e instanceof LibvirtUnreachableError || e instanceof LibvirtError || e instanceof LayerFormatError) {
      io.stderr.write(`storm fetch: ${e.message}\n`);
      return 1;
    }
    const err = e as NodeJS.ErrnoException;
    io.stderr.write(`storm fetch: ${err.code && err.path ? `${err.code} on ${err.path}` : err.message}\n`);
    return 1;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

function labelFor(url: string): string {
  try {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
      const u = new URL(url);
      const last = decodeURIComponent(u.pathname.split('/').filter(Boolean).pop() ?? '');
      return last || u.host;
    }
  } catch {
    // Unparsable: fetchImage reports it; any label will do until then.
  }
  return path.basename(url) || url;
}

// On a terminal, one line redrawn in place with a bar sized to the window; elsewhere (CI logs,
// pipes) a plain line every few seconds, since carriage returns would pile up there.
class ProgressDisplay {
  private lastPlain = -Infinity;
  private drawn = false;
  private announcedResume = false;

  constructor(
    private readonly out: FetchCommandIO['stderr'],
    readonly label: string,
    private readonly plainIntervalSeconds: number,
  ) {}

  update(p: Progress): void {
    if (p.resumedFrom > 0 && !this.announcedResume) {
      this.announcedResume = true;
      this.line(`${this.label}: resuming at ${formatBytes(p.resumedFrom)}`);
    }
    if (this.out.isTTY) {
      this.out.write(`\r${renderBar(p, this.label, this.out.columns ?? 80)}\x1b[K`);
      this.drawn = true;
      return;
    }
    const now = performance.now();
    const done = p.total !== null && p.bytes >= p.total;
    if (done || now - this.lastPlain >= this.plainIntervalSeconds * 1000) {
      this.lastPlain = now;
      this.out.write(formatProgressLine(p, this.label) + '\n');
    }
  }

  /** Ends the redrawn line so whatever follows starts on its own. */
  finish(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }

  private line(text: string): void {
    this.out.write((this.drawn ? '\r\x1b[K' : '') + text + '\n');
  }
}

/** One terminal line of at most `columns - 1` characters (the last column would wrap on some terminals). */
export function renderBar(p: Progress, label: string, columns: number): string {
  const width = Math.max(20, columns) - 1;
  const f = progressFields(p);
  const stats = [f.amount, f.percent, f.rate, f.eta].filter((s) => s !== '').join('  ');
  const room = width - label.length - stats.length - 6;
  if (p.total !== null && p.total > 0 && room >= 10) {
    const inner = Math.min(room, 50);
    const filled = Math.min(inner, Math.floor((p.bytes / p.total) * inner));
    const bar = '='.repeat(filled) + (filled < inner ? '>' : '') + ' '.repeat(Math.max(0, inner - filled - 1));
    return `${label}  [${bar}]  ${stats}`;
  }
  // Too narrow for the bar: shorten the name, then drop what matters least.
  const shown = [f.amount, f.percent, f.rate, f.eta];
  const dropOrder = f.percent ? [3, 0, 2] : [3, 2];
  for (let dropped = 0; ; dropped++) {
    const text = shown.filter((s) => s !== '').join('  ');
    const full = `${label}  ${text}`;
    if (full.length <= width) return full;
    const keep = width - text.length - 2;
    if (keep >= 8) return `${label.slice(0, keep - 1)}…  ${text}`;
    if (dropped === dropOrder.length) return text.slice(0, width);
    shown[dropOrder[dropped]!] = '';
  }
}
