// A channel as a publisher makes one: definitions → `astro build` of catalog-site → signed
// images and feed → a plain static HTTP server on loopback.
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { serializeApplianceDefinition } from '../../provider/src/channel/definition.ts';
import { generateKeyPair, loadSecretKey, newFeedClaims, signFile, type SecretKey } from '../../provider/src/channel/signing.ts';
import type { ApplianceDefinition } from '../../provider/src/channel/types.ts';
import { REPO_DIR } from './terraform.ts';

const site = path.join(REPO_DIR, 'catalog-site');
const astroBin = path.join(REPO_DIR, 'node_modules/astro/bin/astro.mjs');

export interface BuildResult {
  code: number | null;
  output: string;
  seconds: number;
}

/** `astro build` of catalog-site with the channel settings a publisher would give. */
export async function buildSite(appliances: string, outDir: string, channelUrl: string, extraEnv: Record<string, string> = {}): Promise<BuildResult> {
  const started = performance.now();
  const child = spawn(process.execPath, [astroBin, 'build', '--root', site, '--outDir', outDir], {
    cwd: REPO_DIR,
    env: {
      ...process.env,
      STORM_CHANNEL_APPLIANCES: appliances,
      STORM_CHANNEL_URL: channelUrl,
      STORM_CHANNEL_TITLE: 'Test channel',
      ...extraEnv,
      ASTRO_TELEMETRY_DISABLED: '1',
      NO_COLOR: '1',
      FORCE_COLOR: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b));
  child.stderr.on('data', (b: Buffer) => (output += b));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, output, seconds: (performance.now() - started) / 1000 };
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.xml': 'application/xml; charset=utf-8',
  '.xsd': 'application/xml; charset=utf-8',
  '.json': 'application/json',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.sig': 'text/plain; charset=utf-8',
};

/** A static file server for `root`, mounted at `basePath`, like any plain web server; on `port` when given (else any free one). */
export async function serveStatic(root: string, basePath = '/', port = 0): Promise<{ server: Server; url: string }> {
  const server = createServer(async (req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://x');
    if (!pathname.startsWith(basePath)) return void res.writeHead(404).end('not found');
    let file = path.join(root, decodeURIComponent(pathname.slice(basePath.length)));
    if (!file.startsWith(root)) return void res.writeHead(403).end();
    const st = await stat(file).catch(() => null);
    if (st?.isDirectory()) file = path.join(file, 'index.html');
    const body = await readFile(file).catch(() => null);
    if (!body) return void res.writeHead(404).end('not found');
    res.writeHead(200, { 'Content-Type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${basePath}` };
}

export interface ChannelImage {
  path: string;
  sha256: string;
}

export interface ChannelAppliance {
  name: string;
  version: string;
  label: string;
  /** Default: "LABEL, published for storm's tests." */
  description?: string;
  /** Null: a single-layer appliance (the paper's Figure 2). */
  base: ({ name: string } & ChannelImage) | null;
  image: ChannelImage;
  /** The system disk's file inside the image (default: the image's own file name). */
  systemDiskFile?: string;
  /** Swap and user disks beside the system disk. */
  disks?: { name: string; type: 'swap' | 'user'; sizeMib: number }[];
  webpanel?: string;
  boot?: { kernel: ChannelImage; initrd: ChannelImage; cmdline: string };
  memoryMib?: number;
  dependencies?: string[];
}

export interface TestChannel {
  /** URL of rss.xml. */
  feedUrl: string;
  /** The served tree: rss.xml, rss.xml.sig, appliances/…, images/… */
  root: string;
  publicKeyLine: string;
  /** A key nobody signed with, for "wrong key" cases. */
  otherPublicKeyLine: string;
  /** The publisher's secret key, which signed the images and the feed. */
  publisherKey: SecretKey;
  /**
   * Signs rss.xml again, as `storm sign --purpose feed` does after a build (a newer version each
   * time), writing rss.xml.sig; returns the signature. The options make the signatures an
   * attacker would replay or a careless publisher would make.
   */
  signFeed(options?: SignFeedOptions): Promise<string>;
  /** Served path of an image by its local file name. */
  servedImage(fileName: string): string;
  /** Stops serving (the channel goes down); the files stay. */
  close(): Promise<void>;
  /** Serves again at the same address after close(). */
  reopen(): Promise<void>;
  /** Stops serving and deletes everything. */
  remove(): Promise<void>;
}

export interface SignFeedOptions {
  /** Another key than the publisher's. */
  key?: SecretKey;
  /** The channel named in the signature (default: the feed's URL). */
  channel?: string;
  /** How long the signature is valid (default: storm sign's 7 days). */
  lifetimeMs?: number;
  /** The signing time (default: now, above every earlier version). */
  now?: number;
}

export interface PublishOptions {
  /**
   * Where the channel lives; its publisher key is kept there and used again by the next call,
   * so a channel published again (another run of the demo) is the same channel.
   * Default: a fresh temporary directory.
   */
  dir?: string;
  /** Loopback port to serve on (default: any free one). */
  port?: number;
  /** The publisher's name in its key (default "test publisher"). */
  publisher?: string;
  /**
   * Keep each appliance image beside its definition, as a publisher does, so the site build sees
   * it and the feed says its download size (default: images are only served, the feed says 0).
   */
  imagesBeside?: boolean;
}

/** The publisher key kept in `dir`, or a new one written there. */
async function publisherKeyIn(dir: string, publisher: string): Promise<{ publicKeyLine: string; secretKeyPem: string }> {
  const file = path.join(dir, 'publisher-key.json');
  const kept = await readFile(file, 'utf8').then((t) => JSON.parse(t) as { publicKeyLine: string; secretKeyPem: string }, () => null);
  if (kept) return kept;
  const key = generateKeyPair(publisher);
  await writeFile(file, JSON.stringify({ publicKeyLine: key.publicKeyLine, secretKeyPem: key.secretKeyPem }), { mode: 0o600 });
  return key;
}

/** Publishes appliances as a signed channel on loopback (build, sign images and feed, serve). */
export async function publishTestChannel(appliances: ChannelAppliance[], options: PublishOptions = {}): Promise<TestChannel> {
  const work = options.dir ?? (await mkdtemp(path.join(tmpdir(), 'storm-channel-')));
  const root = path.join(work, 'www');
  const defs = path.join(work, 'appliances');
  await mkdir(root, { recursive: true });
  const { server, url } = await serveStatic(root, '/', options.port);
  const key = options.dir ? await publisherKeyIn(work, options.publisher ?? 'test publisher') : generateKeyPair(options.publisher ?? 'test publisher');
  const other = generateKeyPair('someone else');
  const secret = loadSecretKey(key.secretKeyPem);
  const imageUrl = (p: string) => `${url}images/${path.basename(p)}`;
  const images = new Set<string>();
  const ref = (img: ChannelImage) => {
    images.add(img.path);
    return { url: imageUrl(img.path), sha256: img.sha256, sig: `${imageUrl(img.path)}.sig` };
  };
  for (const a of appliances) {
    const def: ApplianceDefinition = {
      formatVersion: '1.0',
      name: a.name,
      label: a.label,
      description: a.description ?? `${a.label}, published for storm's tests.`,
      version: a.version,
      sizeMib: 64,
      image: ref(a.image),
      base: a.base ? { name: a.base.name, ...ref(a.base) } : null,
      boot: a.boot ? { kernel: ref(a.boot.kernel), initrd: ref(a.boot.initrd), cmdline: a.boot.cmdline } : null,
      provides: [a.name],
      webpanel: a.webpanel ?? null,
      hardware: {
        cpus: 1,
        memoryKib: (a.memoryMib ?? 256) * 1024,
        ostype: 'linux',
        disks: [
          { name: 'vda', type: 'system', file: a.systemDiskFile ?? path.basename(a.image.path), sizeMib: null },
          ...(a.disks ?? []).map((d) => ({ name: d.name, type: d.type, file: null, sizeMib: d.sizeMib })),
        ],
      },
      dependencies: (a.dependencies ?? []).map((d) => ({ name: d.split(':')[0]!, version: d.split(':')[1] ?? null })),
    };
    await mkdir(path.join(defs, `${a.name}-${a.version}`), { recursive: true });
    await writeFile(path.join(defs, `${a.name}-${a.version}`, 'appliance.xml'), serializeApplianceDefinition(def));
    if (options.imagesBeside) await copyFile(a.image.path, path.join(defs, `${a.name}-${a.version}`, path.basename(a.image.path)));
  }
  const built = await buildSite(defs, root, url);
  if (built.code !== 0) throw new Error(`the channel site did not build:\n${built.output}`);
  await mkdir(path.join(root, 'images'), { recursive: true });
  for (const img of images) {
    const served = path.join(root, 'images', path.basename(img));
    await copyFile(img, served);
    await writeFile(`${served}.sig`, (await signFile(secret, served, 'image')).signature);
  }
  const feedUrl = `${url}rss.xml`;
  let lastVersion = 0;
  const signFeed = async (options: SignFeedOptions = {}): Promise<string> => {
    const now = options.now ?? Math.max(Date.now(), lastVersion + 1);
    lastVersion = Math.max(lastVersion, now);
    const claims = newFeedClaims(options.channel ?? feedUrl, { now, lifetimeMs: options.lifetimeMs });
    const { signature } = await signFile(options.key ?? secret, path.join(root, 'rss.xml'), claims);
    await writeFile(path.join(root, 'rss.xml.sig'), signature);
    return signature;
  };
  await signFeed();
  return {
    feedUrl,
    root,
    publicKeyLine: key.publicKeyLine,
    otherPublicKeyLine: other.publicKeyLine,
    publisherKey: secret,
    signFeed,
    servedImage: (fileName) => path.join(root, 'images', fileName),
    close: async () => {
      if (!server.listening) return;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    reopen: async () => {
      if (server.listening) return;
      await new Promise<void>((resolve) => server.listen(Number(new URL(url).port), '127.0.0.1', resolve));
    },
    remove: async () => {
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(work, { recursive: true, force: true });
    },
  };
}

/**
 * HCL that installs appliance `name` from a channel on `server` (an HCL expression): a
 * `data "storm_appliance"` and the `resource "storm_appliance"` fed by it, both labelled `name`.
 */
export function applianceFromChannelHcl(feedUrl: string, name: string, server: string): string {
  const d = `data.storm_appliance.${name}`;
  return `
data "storm_appliance" "${name}" {
  channel = "${feedUrl}"
  name    = "${name}"
}

resource "storm_appliance" "${name}" {
  server  = ${server}
  name    = ${d}.name
  version = ${d}.version
  base {
    name   = ${d}.base_name
    url    = ${d}.base_url
    sha256 = ${d}.base_sha256
  }
  image {
    url    = ${d}.image_url
    sha256 = ${d}.image_sha256
  }
  dynamic "boot" {
    for_each = ${d}.boot == null ? [] : [${d}.boot]
    content {
      kernel_url    = boot.value.kernel_url
      kernel_sha256 = boot.value.kernel_sha256
      initrd_url    = boot.value.initrd_url
      initrd_sha256 = boot.value.initrd_sha256
      cmdline       = boot.value.cmdline
    }
  }
}
`;
}
