// `storm keygen`, `storm sign`, `storm verify`, `storm rotate-key`: the publisher's side of
// channel signatures (see ../channel/signing.ts and rotation.ts for the formats), and a way for
// anyone to check a download by hand.
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatBytes } from '../drivers/images/fetch.ts';
import { checkFeedFreshness, describeVersion, versionText } from '../channel/freshness.ts';
import { makeRotation, rotationUrl, verifyRotation } from '../channel/rotation.ts';
import {
  DEFAULT_FEED_LIFETIME_MS,
  checkFeedLifetime,
  PUBLIC_KEY_PREFIX,
  SIGNATURE_PURPOSES,
  SignatureMismatchError,
  SigningError,
  channelName,
  formatPublicKey,
  formatTime,
  generateKeyPair,
  hashFile,
  loadSecretKey,
  newFeedClaims,
  parseDuration,
  parsePublicKey,
  parsePublicKeys,
  parseSignature,
  signFile,
  verifyFeedSignature,
  verifySignature,
} from '../channel/signing.ts';
import type { Claims, PublicKey, SecretKey, SignaturePurpose } from '../channel/signing.ts';

/** Where the commands write and what they read from the environment; tests pass fakes. */
export interface KeysCommandIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** STORM_KEY_PASSPHRASE, XDG_CONFIG_HOME, HOME. */
  env?: NodeJS.ProcessEnv;
}

const defaultIO = (): KeysCommandIO => ({ stdout: process.stdout, stderr: process.stderr, env: process.env });

/** Outside any project directory by default, so a secret key does not end up committed with the channel site. */
export function defaultKeyPrefix(env: NodeJS.ProcessEnv = process.env): string {
  const config = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(config, 'storm', 'publisher');
}

function passphraseOf(env: NodeJS.ProcessEnv | undefined): string | undefined {
  return env?.STORM_KEY_PASSPHRASE || undefined;
}

function usageError(io: KeysCommandIO, command: string, usage: string, message: string): number {
  io.stderr.write(`storm ${command}: ${message}\nUsage: ${usage}\nRun \`storm ${command} --help\` for details.\n`);
  return 2;
}

function describeFsError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOENT' && err.path) return `${err.path} does not exist`;
  if (err.code === 'EACCES' && err.path) return `no permission to access ${err.path}`;
  if (err.code === 'EISDIR' && err.path) return `${err.path} is a directory`;
  return err.code && err.path ? `${err.code} on ${err.path}` : err.message;
}

// ---------------------------------------------------------------------------------------------
// keygen

export const keygenUsage = 'storm keygen [--out PREFIX] [--comment TEXT] [--force]';

export const keygenHelp = `Usage: ${keygenUsage}

Create an Ed25519 key pair for signing a channel's feed and images:

  PREFIX.key   the secret key (PKCS#8 PEM, mode 0600). Keep it private and backed up: whoever
               has it can publish images your users will run.
  PREFIX.pub   the public key, one line. Publish it (on the channel site, in your README);
               users add it to the provider's trusted_keys.

  --out PREFIX      where to write (default: $XDG_CONFIG_HOME/storm/publisher, else
                    ~/.config/storm/publisher; a trailing .key or .pub is ignored)
  --comment TEXT    text at the end of the public key line, e.g. the channel's name
  --force           replace existing PREFIX.key / PREFIX.pub (signatures made with the old
                    key stop verifying for users who trust only the new one)

If STORM_KEY_PASSPHRASE is set, the secret key is encrypted with it (aes-256-cbc), and
\`storm sign\` then needs the same variable.

Exit status: 0 created, 1 failure (e.g. the files exist), 2 usage error.
`;

export async function keygenCommand(args: string[], io: KeysCommandIO = defaultIO()): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: false,
      options: {
        out: { type: 'string' },
        comment: { type: 'string' },
        force: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    return usageError(io, 'keygen', keygenUsage, (e as Error).message);
  }
  const { values } = parsed;
  if (values.help) {
    io.stdout.write(keygenHelp);
    return 0;
  }
  if (values.out === '') return usageError(io, 'keygen', keygenUsage, '--out must not be empty');
  if (values.comment !== undefined && /[\r\n]/.test(values.comment)) return usageError(io, 'keygen', keygenUsage, '--comment must be a single line');
  const prefix = (values.out ?? defaultKeyPrefix(io.env)).replace(/\.(key|pub)$/, '');
  const keyFile = `${prefix}.key`;
  const pubFile = `${prefix}.pub`;

  if (!values.force) {
    const existing: string[] = [];
    for (const f of [keyFile, pubFile]) if (await exists(f)) existing.push(f);
    if (existing.length) {
      io.stderr.write(
        `storm keygen: ${existing.join(' and ')} already exist${existing.length === 1 ? 's' : ''}; not replacing ` +
          `${existing.length === 1 ? 'it' : 'them'}. Use --force to replace, or --out to choose another prefix.\n`,
      );
      return 1;
    }
  }

  const passphrase = passphraseOf(io.env);
  const pair = generateKeyPair(values.comment, passphrase);
  try {
    // 0700 only applies to directories this creates, e.g. ~/.config/storm.
    await fs.mkdir(path.dirname(path.resolve(prefix)), { recursive: true, mode: 0o700 });
    await writeSecretFile(keyFile, pair.secretKeyPem, Boolean(values.force));
    await fs.writeFile(pubFile, pair.publicKeyLine + '\n', { mode: 0o644 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    io.stderr.write(`storm keygen: ${err.code === 'EEXIST' ? `${err.path} appeared meanwhile; not replacing it` : describeFsError(e)}\n`);
    return 1;
  }

  io.stdout.write(
    [
      `Secret key: ${keyFile} (mode 0600, ${passphrase ? 'encrypted with STORM_KEY_PASSPHRASE' : 'not encrypted; set STORM_KEY_PASSPHRASE to encrypt it'})`,
      `Public key: ${pubFile}`,
      '',
      pair.publicKeyLine,
      '',
      'Users of your channel trust this key by adding the line above to the provider configuration:',
      '',
      '  provider "storm" {',
      `    trusted_keys = ["${pair.publicKeyLine}"]`,
      '  }',
      '',
      `Sign with: storm sign --key ${keyFile} --purpose image IMAGE...   (and --purpose feed for the feed)`,
      '',
    ].join('\n'),
  );
  return 0;
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch {
    return false;
  }
}

async function writeSecretFile(file: string, text: string, replace: boolean): Promise<void> {
  const handle = await fs.open(file, replace ? 'w' : 'wx', 0o600);
  try {
    // The mode given to open() does not apply to a file that already existed (--force).
    await handle.chmod(0o600);
    await handle.writeFile(text);
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------
// sign

export const signUsage = 'storm sign [--key FILE] [--purpose image|feed] [--channel URL] [--expires-in DURATION] [--name NAME] [--comment TEXT] FILE...';

export const signHelp = `Usage: ${signUsage}

Sign each FILE, writing FILE.sig next to it (replacing an older one). The signature covers the
file's sha256 and size, the purpose and the file name, not the file's own text, so publish the
.sig files next to what they sign and point the feed's <sig> elements at them.

  --key FILE        the secret key from \`storm keygen\` (default: $XDG_CONFIG_HOME/storm/publisher.key,
                    else ~/.config/storm/publisher.key)
  --purpose P       "image" (default) for appliance and base images, kernels and initrds;
                    "feed" for the channel's rss.xml. The provider refuses a signature made for
                    another purpose.
  --name NAME       the name recorded in the signature (default: the file's base name); only
                    with a single FILE
  --comment TEXT    a "comment:" line in the .sig. It is not covered by the signature.

A feed's signature also says, so that an old feed cannot be replayed, frozen or served as
another channel's:

  --channel URL     the channel: the URL users give as \`channel\` (the feed's own URL). Default:
                    the feed's <atom:link rel="self">, which the catalog site writes from
                    STORM_CHANNEL_URL. A feed signed for one URL is refused at any other.
  --expires-in D    how long the signature is valid: 7d by default (s, m, h, d, w; at most 366d).
                    Past it the provider refuses the feed, its cached copy included: sign again
                    before then, even when nothing changed.
  the version       the signing time in milliseconds, always above the version in an existing
                    FILE.sig; the provider refuses a feed older than one it has seen.

An encrypted key needs STORM_KEY_PASSPHRASE. Files ending in .sig are skipped. To announce a new
key to users of the old one, see \`storm rotate-key --help\`.
Exit status: 0 all signed, 1 a file or the key failed, 2 usage error.
`;

export async function signCommand(args: string[], io: KeysCommandIO = defaultIO()): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        key: { type: 'string' },
        purpose: { type: 'string' },
        name: { type: 'string' },
        comment: { type: 'string' },
        channel: { type: 'string' },
        'expires-in': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    return usageError(io, 'sign', signUsage, (e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(signHelp);
    return 0;
  }
  const purpose = values.purpose ?? 'image';
  if (purpose === 'key-rotation') return usageError(io, 'sign', signUsage, 'a key rotation is made and signed by `storm rotate-key`');
  if (purpose !== 'image' && purpose !== 'feed') return usageError(io, 'sign', signUsage, `--purpose must be "image" or "feed", got "${purpose}"`);
  if (positionals.length === 0) return usageError(io, 'sign', signUsage, 'no file to sign');
  if (values.name !== undefined && positionals.length > 1) return usageError(io, 'sign', signUsage, '--name needs a single FILE');
  if (values.comment !== undefined && /[\r\n]/.test(values.comment)) return usageError(io, 'sign', signUsage, '--comment must be a single line');
  let lifetimeMs = DEFAULT_FEED_LIFETIME_MS;
  if (purpose === 'image') {
    for (const option of ['channel', 'expires-in'] as const) {
      if (values[option] !== undefined) return usageError(io, 'sign', signUsage, `--${option} is for feeds (--purpose feed); an image's signature needs neither`);
    }
  } else {
    if (values.channel !== undefined && positionals.length > 1) return usageError(io, 'sign', signUsage, '--channel needs a single FILE: each channel has its own feed');
    try {
      if (values.channel !== undefined) channelName(values.channel);
    } catch (e) {
      return usageError(io, 'sign', signUsage, `--channel: ${(e as Error).message}`);
    }
    try {
      if (values['expires-in'] !== undefined) lifetimeMs = parseDuration(values['expires-in']);
      checkFeedLifetime(lifetimeMs);
    } catch (e) {
      return usageError(io, 'sign', signUsage, `--expires-in: ${(e as Error).message}`);
    }
  }

  const secretKey = await readSecretKey(io, 'sign', values.key);
  if (!secretKey) return 1;

  let failed = 0;
  for (const file of positionals) {
    if (file.endsWith('.sig')) {
      io.stderr.write(`storm sign: skipping ${file}: it is a signature\n`);
      continue;
    }
    try {
      const sigFile = `${file}.sig`;
      let claims: 'image' | Claims = 'image';
      if (purpose === 'feed') {
        const feed = await feedClaims(file, values.channel, lifetimeMs);
        if (feed.clockBehind) {
          io.stderr.write(`storm sign: warning: ${sigFile} has version ${feed.version - 1}, not older than this machine's clock (${formatTime(Date.now())}): is the clock wrong? Signing with version ${feed.version}\n`);
        }
        claims = feed;
      }
      const signed = await signFile(secretKey, file, claims, { name: values.name, comment: values.comment });
      // Through a temporary name, so a web server never serves half a signature.
      const tmp = `${sigFile}.${process.pid}.tmp`;
      await fs.writeFile(tmp, signed.signature);
      await fs.rename(tmp, sigFile);
      const s = signed.statement;
      const feedPart = s.purpose === 'feed' ? ` for channel ${s.channel}, ${describeVersion(s.version)}, expires ${formatTime(s.expires)}` : '';
      io.stdout.write(`${sigFile}: signed ${s.purpose} "${s.name}"${feedPart}, sha256 ${s.sha256}, ${formatBytes(s.size)} (${s.size} bytes), key ${secretKey.keyId}\n`);
    } catch (e) {
      failed++;
      io.stderr.write(`storm sign: ${file}: ${e instanceof SigningError ? e.message : describeFsError(e)}\n`);
    }
  }
  return failed ? 1 : 0;
}

async function readSecretKey(io: KeysCommandIO, command: string, given: string | undefined): Promise<SecretKey | null> {
  const keyFile = given ?? `${defaultKeyPrefix(io.env)}.key`;
  try {
    const stat = await fs.stat(keyFile);
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      io.stderr.write(`storm ${command}: warning: ${keyFile} is readable by other users (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 it\n`);
    }
    return loadSecretKey(await fs.readFile(keyFile, 'utf8'), passphraseOf(io.env));
  } catch (e) {
    const missingDefault = given === undefined && (e as NodeJS.ErrnoException).code === 'ENOENT';
    const why = e instanceof SigningError ? `${keyFile}: ${e.message}` : describeFsError(e);
    io.stderr.write(`storm ${command}: ${why}${missingDefault ? ' (create a key with `storm keygen`, or give --key)' : ''}\n`);
    return null;
  }
}

/** The href of a feed's <atom:link rel="self">: where the catalog site says the feed lives. */
export function feedSelfLink(xml: string): string | null {
  for (const [tag] of xml.matchAll(/<atom:link\b[^>]*>/g)) {
    const attrs = new Map([...tag.matchAll(/\s([a-zA-Z:]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)].map((m) => [m[1]!, m[2] ?? m[3] ?? '']));
    if (attrs.get('rel') === 'self' && attrs.get('href')) return unescapeXml(attrs.get('href')!);
  }
  return null;
}

function unescapeXml(text: string): string {
  return text.replace(/&(lt|gt|quot|apos|amp);/g, (_, e: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[e as 'lt']);
}

/** A feed is XML with an <rss> element; sniffed from its start, which is where <rss> is. */
function looksLikeFeed(head: string): boolean {
  const text = head.replace(/^\uFEFF/, '').trimStart();
  return text.startsWith('<') && /<rss[\s>]/.test(text);
}

async function feedClaims(file: string, channelOption: string | undefined, lifetimeMs: number): Promise<ReturnType<typeof newFeedClaims>> {
  const xml = await fs.readFile(file, 'utf8');
  if (!looksLikeFeed(xml.slice(0, 64 * 1024))) throw new SigningError('this is not an RSS feed (no <rss> element near its start): sign images with --purpose image');
  const self = feedSelfLink(xml);
  let channel: string;
  if (channelOption !== undefined) {
    channel = channelName(channelOption);
    if (self !== null && channelName(self) !== channel) {
      throw new SigningError(
        `the feed says it lives at ${self} (its <atom:link rel="self">), and --channel says ${channel}: users reading it at one of them would be refused. ` +
          'Build the site with STORM_CHANNEL_URL set to where it is served, or give that URL to --channel',
      );
    }
  } else if (self !== null) {
    channel = channelName(self);
  } else {
    throw new SigningError('the feed has no <atom:link rel="self"> naming its URL: give --channel URL, the URL users will read it at');
  }
  let previousVersion: number | null = null;
  try {
    const previous = parseSignature(await fs.readFile(`${file}.sig`, 'utf8'));
    if (previous.purpose === 'feed') previousVersion = previous.version;
  } catch {
    // No signature yet, or one in another format: nothing to stay above.
  }
  return newFeedClaims(channel, { lifetimeMs, previousVersion });
}

// ---------------------------------------------------------------------------------------------
// verify

export const verifyUsage = 'storm verify --pub FILE_OR_LINE [--pub …] [--sig FILE.sig] [--purpose image|feed|key-rotation] [--channel URL] FILE';

export const verifyHelp = `Usage: ${verifyUsage}

Check that FILE is signed by a trusted key, exactly as the provider does before it uses an
image or a feed.

  --pub FILE_OR_LINE  a trusted public key: a "${PUBLIC_KEY_PREFIX} …" line, or a file of such
                      lines (a .pub file; blank and # lines are skipped). May be repeated.
  --sig FILE.sig      the signature (default: FILE.sig)
  --purpose P         what FILE is: "image", "feed" or "key-rotation". Default: inferred from
                      FILE (XML with an <rss> element is a feed, a storm-key-rotation JSON
                      document a key rotation, anything else an image); a signature made for
                      another purpose fails.
  --channel URL       for a feed: the channel it must be signed for (default: the feed's
                      <atom:link rel="self">, when it has one). For a key rotation, likewise.

For a feed it prints the channel, version and expiry it verified, and fails once the feed has
expired. (The provider also refuses a feed older than the newest it has seen; that memory is the
provider's, not this command's.)

Exit status: 0 the signature is valid and for this file, 1 it is not (missing, unknown key,
bad signature, made for other content or another channel, expired, old format), 2 usage error.
`;

export async function verifyCommand(args: string[], io: KeysCommandIO = defaultIO()): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        pub: { type: 'string', multiple: true },
        sig: { type: 'string' },
        purpose: { type: 'string' },
        channel: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    return usageError(io, 'verify', verifyUsage, (e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(verifyHelp);
    return 0;
  }
  if (!values.pub?.length) return usageError(io, 'verify', verifyUsage, '--pub is required: the public key(s) to trust');
  if (positionals.length !== 1) return usageError(io, 'verify', verifyUsage, `expected one FILE, got ${positionals.length}`);
  let wanted: SignaturePurpose | undefined;
  if (values.purpose !== undefined) {
    if (!isPurpose(values.purpose)) return usageError(io, 'verify', verifyUsage, `--purpose must be "image", "feed" or "key-rotation", got "${values.purpose}"`);
    wanted = values.purpose;
  }
  let channelOption: string | undefined;
  if (values.channel !== undefined) {
    try {
      channelOption = channelName(values.channel);
    } catch (e) {
      return usageError(io, 'verify', verifyUsage, `--channel: ${(e as Error).message}`);
    }
  }
  const file = positionals[0]!;
  const sigFile = values.sig ?? `${file}.sig`;

  const trusted: PublicKey[] = [];
  for (const pub of values.pub) {
    try {
      if (pub.trimStart().startsWith(`${PUBLIC_KEY_PREFIX} `)) {
        trusted.push(parsePublicKey(pub));
      } else {
        const keys = parsePublicKeys(await fs.readFile(pub, 'utf8'));
        if (keys.length === 0) throw new SigningError('no public key in this file');
        trusted.push(...keys);
      }
    } catch (e) {
      io.stderr.write(`storm verify: --pub ${pub}: ${e instanceof SigningError ? e.message : describeFsError(e)}\n`);
      return 2;
    }
  }

  const fail = (message: string): number => {
    io.stderr.write(`storm verify: ${file}: FAILED: ${message}\n`);
    return 1;
  };
  let sigText: string | null = null;
  try {
    sigText = await fs.readFile(sigFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return fail(describeFsError(e));
  }
  try {
    const head = await readHead(file, 64 * 1024);
    const purpose = wanted ?? inferPurpose(head);
    const inferred = wanted ? '' : `, as --purpose ${purpose} (inferred: ${purpose === 'feed' ? 'FILE is an RSS feed' : purpose === 'key-rotation' ? 'FILE is a key rotation document' : 'FILE is not a feed'})`;
    if (sigText === null) return fail(`not signed: there is no ${sigFile}`);
    const { sha256, size } = await hashFile(file);
    if (purpose === 'image') {
      const result = verifySignature(sigText, trusted, { purpose, sha256, size });
      io.stdout.write(`${file}: OK, a valid image signature by key ${who(result)}${inferred} (sha256 ${sha256}, ${size} bytes)\n`);
      return 0;
    }
    if (purpose === 'key-rotation') {
      const sig = parseSignature(sigText);
      const signer = verifySignature(sigText, trusted, { purpose, sha256, size, channel: channelOption });
      const key = trusted.find((k) => k.keyId === signer.keyId)!;
      if (sig.purpose !== 'key-rotation') throw new SigningError('unreachable: a verified rotation signature is for a rotation');
      const rotation = verifyRotation(await fs.readFile(file), sigText, key, channelOption ?? sig.channel);
      io.stdout.write(
        `${file}: OK, a valid key rotation signed by key ${who(signer)}${inferred}\n` +
          `  channel  ${rotation.channel}\n` +
          `  from     ${rotation.from.keyId}\n` +
          `  to       ${formatPublicKey(rotation.to)}\n` +
          `  version  ${versionText(rotation.version)}\n` +
          (rotation.reason ? `  reason   ${rotation.reason}\n` : ''),
      );
      return 0;
    }
    let channel = channelOption;
    if (channel === undefined) {
      const self = feedSelfLink(await fs.readFile(file, 'utf8'));
      if (self !== null) channel = channelName(self);
    }
    const result = verifyFeedSignature(sigText, trusted, { sha256, size, channel });
    const s = result.statement;
    const now = Date.now();
    checkFeedFreshness(s, result.keyId, undefined, now);
    io.stdout.write(
      `${file}: OK, a valid feed signature by key ${who(result)}${inferred}\n` +
        `  channel  ${s.channel}${channel === undefined ? ' (not checked: give --channel, or a feed with <atom:link rel="self">)' : ''}\n` +
        `  version  ${versionText(s.version)}\n` +
        `  expires  ${formatTime(s.expires)} (in ${formatDuration(s.expires - now)})\n` +
        `  sha256   ${sha256}, ${size} bytes\n`,
    );
    return 0;
  } catch (e) {
    const guessed = !wanted && e instanceof SignatureMismatchError && e.field === 'purpose' ? ` (the purpose was inferred from ${file}; give --purpose ${e.signed} if that is what it is)` : '';
    return fail(e instanceof SigningError ? `${e.message}${guessed}` : describeFsError(e));
  }
}

const who = (v: { keyId: string; keyComment: string | null }) => (v.keyComment ? `${v.keyId} (${v.keyComment})` : v.keyId);

async function readHead(file: string, bytes: number): Promise<string> {
  const handle = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

function inferPurpose(head: string): SignaturePurpose {
  if (looksLikeFeed(head)) return 'feed';
  if (/^\s*\{[\s\S]*"type"\s*:\s*"storm-key-rotation"/.test(head)) return 'key-rotation';
  return 'image';
}

/** "6 days 23 hours", "5 minutes": how far away an expiry is, to the two largest units. */
export function formatDuration(ms: number): string {
  const units: [string, number][] = [['day', 86_400_000], ['hour', 3_600_000], ['minute', 60_000], ['second', 1000]];
  const parts: string[] = [];
  let rest = Math.max(0, ms);
  for (const [name, size] of units) {
    const n = Math.floor(rest / size);
    if (n > 0 || (parts.length === 0 && size === 1000)) parts.push(`${n} ${name}${n === 1 ? '' : 's'}`);
    if (parts.length) rest -= n * size;
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

function isPurpose(value: string): value is SignaturePurpose {
  return (SIGNATURE_PURPOSES as readonly string[]).includes(value);
}

// ---------------------------------------------------------------------------------------------
// rotate-key

export const rotateUsage = 'storm rotate-key --key OLD.key --new NEW.pub --channel URL [--out DIR] [--reason TEXT]';

export const rotateHelp = `Usage: ${rotateUsage}

Announce a channel's new publisher key to the users who trust the old one: writes
DIR/rotation-<old key id>.json, naming the channel, the old key and the new one, and its .sig,
signed by the old key. Publish both under keys/ next to the channel's rss.xml (for the catalog
site: --out catalog-site/public/keys, which every build copies into dist/keys/), then sign
the feed and images with the new key.

The provider, finding the feed signed by a key it does not trust, follows these documents from
a key it does trust (up to 8 rotations in a chain), uses the new key, tells the user to replace
the old key's line in trusted_keys, and from then on refuses the channel's feeds signed by the
old key.

  --key OLD.key     the secret key being retired
  --new NEW.pub     the new public key (a .pub file from \`storm keygen\`, or the line itself)
  --channel URL     the channel's feed URL (one rotation document per channel)
  --out DIR         where to write (default: keys)
  --reason TEXT     a line of free text shown to users, e.g. "yearly rotation"

A rotation is for a key you still control. If the old key was stolen, its thief can sign a
rotation just as well: tell users to remove it from trusted_keys and to trust the new key
(README: "Revoking a publisher key").
Exit status: 0 written, 1 failure, 2 usage error.
`;

export async function rotateKeyCommand(args: string[], io: KeysCommandIO = defaultIO()): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: false,
      options: {
        key: { type: 'string' },
        new: { type: 'string' },
        channel: { type: 'string' },
        out: { type: 'string' },
        reason: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    return usageError(io, 'rotate-key', rotateUsage, (e as Error).message);
  }
  const { values } = parsed;
  if (values.help) {
    io.stdout.write(rotateHelp);
    return 0;
  }
  if (!values.key) return usageError(io, 'rotate-key', rotateUsage, '--key is required: the secret key being retired');
  if (!values.new) return usageError(io, 'rotate-key', rotateUsage, '--new is required: the new public key');
  if (!values.channel) return usageError(io, 'rotate-key', rotateUsage, '--channel is required: the URL of the channel\'s rss.xml');
  if (values.reason !== undefined && /[\r\n]/.test(values.reason)) return usageError(io, 'rotate-key', rotateUsage, '--reason must be a single line');
  let channel: string;
  try {
    channel = channelName(values.channel);
  } catch (e) {
    return usageError(io, 'rotate-key', rotateUsage, `--channel: ${(e as Error).message}`);
  }
  let newKeyLine: string;
  try {
    if (values.new.trimStart().startsWith(`${PUBLIC_KEY_PREFIX} `)) {
      newKeyLine = formatPublicKey(parsePublicKey(values.new));
    } else {
      const keys = parsePublicKeys(await fs.readFile(values.new, 'utf8'));
      if (keys.length !== 1) throw new SigningError(`expected one public key in this file, found ${keys.length}`);
      newKeyLine = formatPublicKey(keys[0]!);
    }
  } catch (e) {
    io.stderr.write(`storm rotate-key: --new ${values.new}: ${e instanceof SigningError ? e.message : describeFsError(e)}\n`);
    return 1;
  }
  const secretKey = await readSecretKey(io, 'rotate-key', values.key);
  if (!secretKey) return 1;
  try {
    const made = makeRotation(secretKey, newKeyLine, channel, { reason: values.reason });
    const out = values.out ?? 'keys';
    await fs.mkdir(out, { recursive: true });
    const docFile = path.join(out, made.fileName);
    // The document first, then its signature, each through a temporary name: a reader that
    // sees the new signature also sees the document it covers.
    for (const [file, text] of [[docFile, made.document], [`${docFile}.sig`, made.signature]] as const) {
      const tmp = `${file}.${process.pid}.tmp`;
      await fs.writeFile(tmp, text);
      await fs.rename(tmp, file);
    }
    io.stdout.write(
      [
        `${docFile}: key ${secretKey.keyId} → ${newKeyLine.split(' ')[1]} for channel ${channel}`,
        `${docFile}.sig: signed by ${secretKey.keyId}`,
        '',
        `Publish both at ${rotationUrl(channel, secretKey.keyId)}(.sig), then sign the feed and images with the new key.`,
        'Users who trust the old key follow the rotation and are asked to trust this line instead:',
        '',
        `  ${newKeyLine}`,
        '',
      ].join('\n'),
    );
    return 0;
  } catch (e) {
    io.stderr.write(`storm rotate-key: ${e instanceof SigningError ? e.message : describeFsError(e)}\n`);
    return 1;
  }
}
