// `storm keygen`, `storm sign`, `storm verify`: the publisher's side of channel signatures (see
// ../channel/signing.ts for the formats), and a way for anyone to check a download by hand.
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatBytes } from '../drivers/images/fetch.ts';
import {
  PUBLIC_KEY_PREFIX,
  SIGNATURE_PURPOSES,
  SigningError,
  generateKeyPair,
  hashFile,
  loadSecretKey,
  parsePublicKey,
  parsePublicKeys,
  parseSignature,
  signFile,
  verifySignature,
} from '../channel/signing.ts';
import type { PublicKey, SecretKey, SignaturePurpose } from '../channel/signing.ts';

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

export const signUsage = 'storm sign [--key FILE] [--purpose image|feed] [--name NAME] [--comment TEXT] FILE...';

export const signHelp = `Usage: ${signUsage}

Sign each FILE, writing FILE.sig next to it (replacing an older one). The signature covers the
file's sha256 and size, the purpose and the file name, not the file's own text, so publish the
.sig files next to what they sign and point the feed's <sig> elements at them.

  --key FILE        the secret key from \`storm keygen\` (default: $XDG_CONFIG_HOME/storm/publisher.key,
                    else ~/.config/storm/publisher.key)
  --purpose P       "image" (default) for appliance and base images, kernels and initrds;
                    "feed" for the channel's feed. The provider refuses a signature made for
                    the other purpose.
  --name NAME       the name recorded in the signature (default: the file's base name); only
                    with a single FILE
  --comment TEXT    a "comment:" line in the .sig. It is not covered by the signature.

An encrypted key needs STORM_KEY_PASSPHRASE. Files ending in .sig are skipped.
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
  if (!isPurpose(purpose)) return usageError(io, 'sign', signUsage, `--purpose must be "image" or "feed", got "${purpose}"`);
  if (positionals.length === 0) return usageError(io, 'sign', signUsage, 'no file to sign');
  if (values.name !== undefined && positionals.length > 1) return usageError(io, 'sign', signUsage, '--name needs a single FILE');
  if (values.comment !== undefined && /[\r\n]/.test(values.comment)) return usageError(io, 'sign', signUsage, '--comment must be a single line');

  const keyFile = values.key ?? `${defaultKeyPrefix(io.env)}.key`;
  let secretKey: SecretKey;
  try {
    const stat = await fs.stat(keyFile);
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      io.stderr.write(`storm sign: warning: ${keyFile} is readable by other users (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 it\n`);
    }
    secretKey = loadSecretKey(await fs.readFile(keyFile, 'utf8'), passphraseOf(io.env));
  } catch (e) {
    const missingDefault = values.key === undefined && (e as NodeJS.ErrnoException).code === 'ENOENT';
    const why = e instanceof SigningError ? `${keyFile}: ${e.message}` : describeFsError(e);
    io.stderr.write(`storm sign: ${why}${missingDefault ? ' (create a key with `storm keygen`, or give --key)' : ''}\n`);
    return 1;
  }

  let failed = 0;
  for (const file of positionals) {
    if (file.endsWith('.sig')) {
      io.stderr.write(`storm sign: skipping ${file}: it is a signature\n`);
      continue;
    }
    try {
      const signed = await signFile(secretKey, file, purpose, { name: values.name, comment: values.comment });
      const sigFile = `${file}.sig`;
      // Through a temporary name, so a web server never serves half a signature.
      const tmp = `${sigFile}.${process.pid}.tmp`;
      await fs.writeFile(tmp, signed.signature);
      await fs.rename(tmp, sigFile);
      const s = signed.statement;
      io.stdout.write(`${sigFile}: signed ${s.purpose} "${s.name}", sha256 ${s.sha256}, ${formatBytes(s.size)} (${s.size} bytes), key ${secretKey.keyId}\n`);
    } catch (e) {
      failed++;
      io.stderr.write(`storm sign: ${file}: ${e instanceof SigningError ? e.message : describeFsError(e)}\n`);
    }
  }
  return failed ? 1 : 0;
}

function isPurpose(value: string): value is SignaturePurpose {
  return (SIGNATURE_PURPOSES as readonly string[]).includes(value);
}

// ---------------------------------------------------------------------------------------------
// verify

export const verifyUsage = 'storm verify --pub FILE_OR_LINE [--pub …] [--sig FILE.sig] [--purpose image|feed] FILE';

export const verifyHelp = `Usage: ${verifyUsage}

Check that FILE is signed by a trusted key, exactly as the provider does before it uses an
image or a feed.

  --pub FILE_OR_LINE  a trusted public key: a "${PUBLIC_KEY_PREFIX} …" line, or a file of such
                      lines (a .pub file; blank and # lines are skipped). May be repeated.
  --sig FILE.sig      the signature (default: FILE.sig)
  --purpose P         require an "image" or "feed" signature (default: accept either, and say
                      which it is; the provider always requires the one it expects)

Exit status: 0 the signature is valid and for this file, 1 it is not (missing, unknown key,
bad signature, or made for other content), 2 usage error.
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
    if (!isPurpose(values.purpose)) return usageError(io, 'verify', verifyUsage, `--purpose must be "image" or "feed", got "${values.purpose}"`);
    wanted = values.purpose;
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
    if (sigText === null) return fail(`not signed: there is no ${sigFile}`);
    const purpose = wanted ?? parseSignature(sigText).purpose;
    const { sha256, size } = await hashFile(file);
    const result = verifySignature(sigText, trusted, { purpose, sha256, size });
    const who = result.keyComment ? `${result.keyId} (${result.keyComment})` : result.keyId;
    io.stdout.write(`${file}: OK, a valid ${result.statement.purpose} signature by key ${who} (sha256 ${sha256}, ${size} bytes)\n`);
    return 0;
  } catch (e) {
    return fail(e instanceof SigningError ? e.message : describeFsError(e));
  }
}
