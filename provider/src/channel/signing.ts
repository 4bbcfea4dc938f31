// Publisher signatures for channel feeds and appliance images: Ed25519 (node:crypto), in a small
// minisign-like text format of storm's own, so that neither publishers nor users need a dependency
// or a keyring.
//
// Public key (`<prefix>.pub`, also what users paste into the provider's `trusted_keys`), one line:
//
//   storm-ed25519 <key id> <public key>[ <comment>]
//
//   key id      first 16 hex digits of sha256(raw public key): names the key in signatures and
//               messages, and is checked against the key when the line is parsed
//   public key  standard base64 (with padding) of the raw 32-byte Ed25519 public key
//   comment     optional free text up to the end of the line, ignored
//
// Secret key (`<prefix>.key`, mode 0600): PKCS#8 PEM as node:crypto writes it; encrypted
// (`BEGIN ENCRYPTED PRIVATE KEY`, aes-256-cbc) when created with a passphrase.
//
// What is signed is never a file's bytes but a canonical statement about them, so that a
// multi-GiB image is signed by the sha256 that storm computes anyway while downloading it.
// Two formats, by what the statement has to say:
//
//   storm-signature-v1\n                     an image: what the file is
//   purpose: image\n
//   name: <file name or appliance id>\n
//   sha256: <64 lowercase hex digits>\n
//   size: <bytes, decimal>\n
//
//   storm-signature-v2\n                     a feed or a key rotation: also where and when
//   purpose: feed|key-rotation\n
//   name: …\n  sha256: …\n  size: …\n         (as in v1)
//   channel: <the channel's feed URL, as WHATWG URL's href spells it>\n
//   version: <decimal integer ≥ 1; storm sign uses the signing time in ms since the epoch>\n
//   expires: <ISO 8601 UTC time, as Date.toISOString spells it>\n       (feeds only)
//
// The purpose keeps a feed signature from passing for an image signature of the same bytes and
// the other way round. The name is informative (files get renamed in caches and mirrors) and is
// checked only when the verifier asks for it. A feed names its channel, so that another
// channel's feed served at this URL is refused; its version must never go down, so that an old
// feed cannot be replayed; and it expires, so that a feed cannot be frozen (TUF's mix-and-match,
// rollback and freeze attacks). An image needs none of this: the feed lists the sha256 of every
// image, so the feed's freshness covers them, and image statements stay v1 (nothing to re-sign).
// A v1 feed signature is refused with advice to re-sign: it names no channel, version or expiry,
// so accepting it would accept exactly the replays v2 exists to stop.
//
// Signature (`<file>.sig`), UTF-8 text, one `field: value` per line after the first:
//
//   storm-signature-v1 | storm-signature-v2
//   key-id: <key id>
//   <the statement's fields, as above>
//   signature: <base64 of the 64-byte Ed25519 signature over the canonical statement>
//   comment: <optional free text>
//
// The statement is rebuilt from the statement's lines, so each value has exactly one spelling
// (a channel URL not in its canonical form is malformed, not silently re-spelt). The `comment:`
// line is NOT covered by the signature: anyone can change it, so it must never be trusted. The
// key-id line is not covered either; it only picks the key to try. Fields may come in any order,
// each at most once; unknown fields, a missing field, a field of the other format, or text
// before the first line make the file malformed. CRLF line ends and blank lines are tolerated,
// since .sig files pass through editors and web servers.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const PUBLIC_KEY_PREFIX = 'storm-ed25519';
export const SIGNATURE_HEADER_V1 = 'storm-signature-v1';
export const SIGNATURE_HEADER_V2 = 'storm-signature-v2';

export type SignaturePurpose = 'image' | 'feed' | 'key-rotation';
export const SIGNATURE_PURPOSES: readonly SignaturePurpose[] = ['image', 'feed', 'key-rotation'];

/** How long a feed signature is valid unless the publisher says otherwise: a week, like a Debian Release file's Valid-Until. */
export const DEFAULT_FEED_LIFETIME_MS = 7 * 24 * 3600 * 1000;
/** Longer would make expiry meaningless as a bound on how long a frozen feed can be served. */
export const MAX_FEED_LIFETIME_MS = 366 * 24 * 3600 * 1000;

export interface PublicKey {
  keyId: string;
  /** The raw 32-byte Ed25519 public key. */
  raw: Buffer;
  comment: string | null;
  key: KeyObject;
}

export interface SecretKey {
  keyId: string;
  key: KeyObject;
  publicKey: PublicKey;
}

/** What every statement says about the signed bytes. */
export interface Content {
  name: string;
  sha256: string;
  size: number;
}

/** What a feed or key-rotation statement says beyond its content: v2's fields. */
export type Claims =
  | { purpose: 'image' }
  | { purpose: 'feed'; channel: string; version: number; expires: number }
  | { purpose: 'key-rotation'; channel: string; version: number };

export type Statement = Content & Claims;
export type ImageStatement = Extract<Statement, { purpose: 'image' }>;
export type FeedStatement = Extract<Statement, { purpose: 'feed' }>;
export type RotationStatement = Extract<Statement, { purpose: 'key-rotation' }>;

export type ParsedSignature = Statement & {
  keyId: string;
  signature: Buffer;
  comment: string | null;
};

// ---------------------------------------------------------------------------------------------
// Errors. Every message is meant to be shown to a user as is.

export class SigningError extends Error {
  override name = 'SigningError';
}

/** A public key line that cannot be used; the message says what is wrong with it. */
export class PublicKeyFormatError extends SigningError {
  override name = 'PublicKeyFormatError';
}

/** A secret key that cannot be loaded: not a key, not Ed25519, encrypted without or with a wrong passphrase. */
export class SecretKeyError extends SigningError {
  override name = 'SecretKeyError';
}

/** Base of everything verifySignature throws, so callers can catch "did not verify" in one place. */
export class VerificationError extends SigningError {
  override name = 'VerificationError';
}

export class UnsignedError extends VerificationError {
  override name = 'UnsignedError';
}

export class MalformedSignatureError extends VerificationError {
  override name = 'MalformedSignatureError';
}

export class UnknownKeyError extends VerificationError {
  override name = 'UnknownKeyError';
  constructor(
    readonly keyId: string,
    readonly trustedKeyIds: string[],
  ) {
    const trusted = trustedKeyIds.length ? `the trusted keys are ${trustedKeyIds.join(', ')}` : 'no keys are trusted';
    super(
      `signed by key ${keyId}, which is not a trusted key (${trusted}). If you trust this publisher, ` +
        `add its public key line ("${PUBLIC_KEY_PREFIX} ${keyId} …", from the publisher's .pub file) to the provider's trusted_keys`,
    );
  }
}

export class BadSignatureError extends VerificationError {
  override name = 'BadSignatureError';
  constructor(readonly keyId: string) {
    super(`the signature does not verify with key ${keyId}: the .sig file was altered or was not made with that key`);
  }
}

/** A valid signature, but for other content: the image or feed was changed after signing, or the .sig belongs to another file. */
export class SignatureMismatchError extends VerificationError {
  override name = 'SignatureMismatchError';
  constructor(
    readonly keyId: string,
    readonly field: 'purpose' | 'sha256' | 'size' | 'name',
    readonly signed: string,
    readonly actual: string,
  ) {
    const why =
      field === 'purpose'
        ? `it was made for purpose "${signed}" and purpose "${actual}" was expected: a signature made for one purpose never vouches for another`
        : `it is for ${field} ${signed} while the ${field} here is ${actual}: the file was modified after signing, or the signature belongs to another file`;
    super(`the signature by key ${keyId} is valid, but ${why}`);
  }
}

/** A storm-signature-v1 feed signature: valid once, refused now, because it can be replayed forever. */
export class LegacySignatureError extends VerificationError {
  override name = 'LegacySignatureError';
  constructor(readonly keyId: string) {
    super(
      `it is a ${SIGNATURE_HEADER_V1} feed signature (by key ${keyId}), which names no channel, version or expiry: such a feed could be ` +
        `replayed long after a newer one was published, or served as another channel's feed, so storm no longer accepts it. ` +
        `The publisher re-signs the feed with a current storm: \`storm sign --purpose feed rss.xml\` writes a ${SIGNATURE_HEADER_V2} signature ` +
        `that names the channel, a version and an expiry`,
    );
  }
}

/** A valid feed (or key rotation) signature for another channel than the one being read. */
export class WrongChannelError extends VerificationError {
  override name = 'WrongChannelError';
  constructor(
    readonly keyId: string,
    readonly purpose: SignaturePurpose,
    readonly signed: string,
    readonly expected: string,
  ) {
    super(`the ${purpose} signature by key ${keyId} is valid, but for channel ${signed}, not ${expected}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Keys

export function keyIdOf(raw: Uint8Array): string {
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

function publicKeyFromRaw(raw: Buffer, comment: string | null): PublicKey {
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  return { keyId: keyIdOf(raw), raw, comment, key };
}

function rawPublicKey(key: KeyObject): Buffer {
  const x = key.export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new SigningError('node:crypto did not export the Ed25519 public key');
  return Buffer.from(x, 'base64url');
}

export function formatPublicKey(pub: Pick<PublicKey, 'keyId' | 'raw' | 'comment'>): string {
  const line = `${PUBLIC_KEY_PREFIX} ${pub.keyId} ${pub.raw.toString('base64')}`;
  return pub.comment ? `${line} ${pub.comment}` : line;
}

/**
 * A new publisher key. With a non-empty passphrase the secret key PEM is encrypted
 * (aes-256-cbc, key derived by PBKDF2 as OpenSSL does for PKCS#8).
 */
export function generateKeyPair(comment?: string, passphrase?: string): { publicKeyLine: string; secretKeyPem: string; keyId: string } {
  const cleanComment = comment?.trim() ?? '';
  if (/[\r\n]/.test(cleanComment)) throw new SigningError('the key comment must be a single line');
  const encryption = passphrase ? { cipher: 'aes-256-cbc', passphrase } : {};
  const { publicKey, privateKey } = generateKeyPairSync('ed25519', {
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem', ...encryption },
  });
  // The SPKI DER of an Ed25519 key is a fixed 12-byte header followed by the raw key.
  const raw = Buffer.from(publicKey.subarray(publicKey.length - 32));
  const keyId = keyIdOf(raw);
  return { publicKeyLine: formatPublicKey({ keyId, raw, comment: cleanComment || null }), secretKeyPem: privateKey, keyId };
}

export function parsePublicKey(line: string): PublicKey {
  const text = line.trim();
  if (text === '') throw new PublicKeyFormatError('the public key is empty');
  if (/[\r\n]/.test(text)) throw new PublicKeyFormatError('a public key is a single line; this text has several');
  const [, prefix, keyId, b64, comment] = /^(\S+)(?:[ \t]+(\S+))?(?:[ \t]+(\S+))?(?:[ \t]+(.*))?$/.exec(text) ?? [];
  const shown = text.length > 60 ? `${text.slice(0, 57)}...` : text;
  if (prefix !== PUBLIC_KEY_PREFIX) {
    throw new PublicKeyFormatError(`"${shown}" is not a storm public key: it must start with "${PUBLIC_KEY_PREFIX} " (the line in a .pub file made by \`storm keygen\`)`);
  }
  if (keyId === undefined || b64 === undefined) {
    throw new PublicKeyFormatError(`"${shown}" is incomplete: expected "${PUBLIC_KEY_PREFIX} <key id> <base64 key> [comment]"`);
  }
  if (!/^[0-9a-f]{16}$/.test(keyId)) throw new PublicKeyFormatError(`the key id "${keyId}" must be 16 lowercase hex digits`);
  const raw = decodeBase64Strict(b64);
  if (raw === null) throw new PublicKeyFormatError(`the key "${b64}" is not valid base64`);
  if (raw.length !== 32) throw new PublicKeyFormatError(`the key decodes to ${raw.length} bytes; an Ed25519 public key has 32`);
  const actualId = keyIdOf(raw);
  if (actualId !== keyId) {
    throw new PublicKeyFormatError(`the key id ${keyId} does not match the key (whose id is ${actualId}): the line was damaged or edited`);
  }
  return publicKeyFromRaw(raw, comment?.trim() || null);
}

/** Every key in a .pub file or trusted-keys text; blank lines and `#` lines are skipped. */
export function parsePublicKeys(text: string): PublicKey[] {
  const keys: PublicKey[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    try {
      keys.push(parsePublicKey(t));
    } catch (e) {
      if (e instanceof PublicKeyFormatError && lines.length > 1) throw new PublicKeyFormatError(`line ${i + 1}: ${e.message}`);
      throw e;
    }
  });
  return keys;
}

export function loadSecretKey(pem: string | Buffer, passphrase?: string): SecretKey {
  const text = pem.toString();
  const encrypted = text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----');
  if (!encrypted && !text.includes('-----BEGIN PRIVATE KEY-----')) {
    throw new SecretKeyError('not a storm secret key: expected a PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----") as written by `storm keygen`');
  }
  // OpenSSL's own message for a missing or wrong passphrase ("interrupted or cancelled", "bad
  // decrypt") says nothing useful to a publisher.
  if (encrypted && !passphrase) throw new SecretKeyError('the secret key is encrypted: give its passphrase (STORM_KEY_PASSPHRASE)');
  let key: KeyObject;
  try {
    key = createPrivateKey(encrypted ? { key: text, format: 'pem', passphrase } : { key: text, format: 'pem' });
  } catch (e) {
    if (encrypted) throw new SecretKeyError('wrong passphrase for the secret key (or the key file is damaged)');
    throw new SecretKeyError(`the secret key cannot be read: ${(e as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new SecretKeyError(`the secret key is ${key.asymmetricKeyType ?? 'of an unknown type'}, not ed25519: storm signatures need a key from \`storm keygen\``);
  }
  const publicKey = publicKeyFromRaw(rawPublicKey(createPublicKey(key)), null);
  return { keyId: publicKey.keyId, key, publicKey };
}

// ---------------------------------------------------------------------------------------------
// Statements and signatures

/**
 * The one spelling of a channel's name: its feed URL as WHATWG URL writes it (scheme and host in
 * lower case, the default port dropped, no fragment), an absolute path as its file: URL. The
 * provider compares this with the name a feed was signed for, so `HTTPS://Example.org:443/rss.xml`
 * and `https://example.org/rss.xml` are the same channel.
 */
export function channelName(url: string): string {
  const text = url.trim();
  let u: URL;
  try {
    u = text.startsWith('/') ? pathToFileURL(text) : new URL(text);
  } catch {
    throw new SigningError(`the channel ${JSON.stringify(url)} is not a URL: a channel is named by the absolute URL of its rss.xml, e.g. https://appliances.example.org/rss.xml`);
  }
  if (!['http:', 'https:', 'file:'].includes(u.protocol)) {
    throw new SigningError(`the channel ${JSON.stringify(url)} is not an http(s) or file URL: a channel is named by the absolute URL of its rss.xml`);
  }
  if (u.username || u.password) throw new SigningError(`the channel ${JSON.stringify(url)} has a user name or password in it; a signed channel name must not`);
  u.hash = '';
  return u.href;
}

/** A time as statements and messages spell it; whole milliseconds, UTC. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** The exact bytes that are signed, after checking that the fields cannot smuggle in extra lines. */
export function canonicalStatement(statement: Statement): string {
  const s = normalizeStatement(statement);
  const lines = [s.purpose === 'image' ? SIGNATURE_HEADER_V1 : SIGNATURE_HEADER_V2, `purpose: ${s.purpose}`, `name: ${s.name}`, `sha256: ${s.sha256}`, `size: ${s.size}`];
  if (s.purpose !== 'image') lines.push(`channel: ${s.channel}`, `version: ${s.version}`);
  if (s.purpose === 'feed') lines.push(`expires: ${formatTime(s.expires)}`);
  return lines.join('\n') + '\n';
}

function normalizeStatement(statement: Statement): Statement {
  const { name, size } = statement;
  if (!SIGNATURE_PURPOSES.includes(statement.purpose)) throw new SigningError(`purpose must be one of ${SIGNATURE_PURPOSES.join(', ')}, got "${String(statement.purpose)}"`);
  checkName(name);
  const sha256 = normalizeSha256(statement.sha256);
  if (!Number.isSafeInteger(size) || size < 0) throw new SigningError(`size must be a whole number of bytes, got ${size}`);
  const content = { name, sha256, size };
  if (statement.purpose === 'image') return { purpose: 'image', ...content };
  const channel = channelName(statement.channel);
  checkVersion(statement.version);
  if (statement.purpose === 'key-rotation') return { purpose: 'key-rotation', ...content, channel, version: statement.version };
  if (!Number.isSafeInteger(statement.expires) || statement.expires <= 0) throw new SigningError(`expires must be a time in whole milliseconds since the epoch, got ${statement.expires}`);
  return { purpose: 'feed', ...content, channel, version: statement.version, expires: statement.expires };
}

function checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 1) throw new SigningError(`version must be a whole number of at least 1, got ${version}`);
}

function checkName(name: string): void {
  if (name === '') throw new SigningError('the signed name must not be empty');
  // Control characters would break the one-field-per-line format; edge spaces would not
  // survive a round trip through editors.
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new SigningError(`the signed name ${JSON.stringify(name)} contains control characters`);
  if (name.trim() !== name) throw new SigningError(`the signed name ${JSON.stringify(name)} starts or ends with spaces`);
}

function normalizeSha256(value: string): string {
  const hex = value.trim().replace(/^sha256:/i, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new SigningError(`sha256 must be 64 hex digits, got "${value}"`);
  return hex;
}

export function signStatement(secretKey: SecretKey, statement: Statement, comment?: string): string {
  const s = normalizeStatement(statement);
  const canonical = canonicalStatement(s);
  const signature = sign(null, Buffer.from(canonical, 'utf8'), secretKey.key);
  // The statement's own lines, with the key id after the header: one text for both.
  const [header, ...fields] = canonical.trimEnd().split('\n');
  const lines = [header!, `key-id: ${secretKey.keyId}`, ...fields, `signature: ${signature.toString('base64')}`];
  const c = comment?.trim();
  if (c) {
    if (/[\r\n]/.test(c)) throw new SigningError('the signature comment must be a single line');
    lines.push(`comment: ${c}`);
  }
  return lines.join('\n') + '\n';
}

export interface FeedClaimsOptions {
  /** Now, in ms since the epoch; the version and the expiry count from it. */
  now?: number;
  /** How long the signature is valid; DEFAULT_FEED_LIFETIME_MS when not given. */
  lifetimeMs?: number;
  /** The version of the signature being replaced, if any: the new one is always above it. */
  previousVersion?: number | null;
}

/**
 * The claims of a new feed signature: the signing time as its version (no counter for the
 * publisher to keep, and re-signing an unchanged feed still gives a newer version and a new
 * expiry), raised above the signature it replaces when this machine's clock is behind it.
 */
export function newFeedClaims(channel: string, options: FeedClaimsOptions = {}): Extract<Claims, { purpose: 'feed' }> & { clockBehind: boolean } {
  const now = options.now ?? Date.now();
  const lifetime = options.lifetimeMs ?? DEFAULT_FEED_LIFETIME_MS;
  checkFeedLifetime(lifetime);
  const previous = options.previousVersion ?? 0;
  const clockBehind = previous >= now;
  const version = clockBehind ? previous + 1 : now;
  // Whole seconds: the expiry is read by people in .sig files and messages.
  const expires = Math.floor((version + lifetime) / 1000) * 1000;
  return { purpose: 'feed', channel: channelName(channel), version, expires, clockBehind };
}

/** Throws unless a feed signature may be valid this long. */
export function checkFeedLifetime(ms: number): void {
  if (!Number.isSafeInteger(ms) || ms < 1000) throw new SigningError('a feed signature must be valid for at least a second');
  if (ms > MAX_FEED_LIFETIME_MS) throw new SigningError(`a feed signature may be valid for at most 366 days (an expiry years away would not stop a frozen feed); got ${Math.round(ms / 86_400_000)} days`);
}

/** A duration as publishers write it: 30s, 90m, 12h, 7d, 2w. */
export function parseDuration(text: string): number {
  const m = /^\s*([0-9]{1,6})\s*([smhdw])\s*$/.exec(text);
  if (!m) throw new SigningError(`"${text}" is not a duration: write a whole number and a unit, e.g. 7d, 36h, 2w (s, m, h, d, w)`);
  const unit = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[m[2] as 's' | 'm' | 'h' | 'd' | 'w'];
  return Number(m[1]) * unit * 1000;
}

/** sha256 and size of a file, read in chunks: images are GiB, and storm never holds one in memory. */
export async function hashFile(file: string, onProgress?: (bytes: number) => void): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    const buf = chunk as Buffer;
    hash.update(buf);
    size += buf.length;
    onProgress?.(size);
  }
  return { sha256: hash.digest('hex'), size };
}

export interface SignFileOptions {
  /** What the statement names; the file's base name by default. */
  name?: string;
  comment?: string;
  /** Bytes hashed so far, after each chunk. */
  onProgress?: (bytes: number) => void;
}

export interface SignedFile {
  /** The .sig text. */
  signature: string;
  statement: Statement;
}

/** Signs a file; `claims` is 'image', or a feed's or key rotation's claims (see newFeedClaims). */
export async function signFile(secretKey: SecretKey, file: string, claims: 'image' | Claims, options: SignFileOptions = {}): Promise<SignedFile> {
  const name = options.name ?? path.basename(file);
  const c: Claims = claims === 'image' ? { purpose: 'image' } : claims;
  // Fail on bad claims before hashing GiB.
  checkName(name);
  normalizeStatement({ ...c, name, sha256: '0'.repeat(64), size: 0 });
  const { sha256, size } = await hashFile(file, options.onProgress);
  const statement = normalizeStatement({ ...c, name, sha256, size });
  return { signature: signStatement(secretKey, statement, options.comment), statement };
}

const V1_FIELDS = ['purpose', 'name', 'sha256', 'size'] as const;
const V2_FIELDS = [...V1_FIELDS, 'channel', 'version', 'expires'] as const;
const ENVELOPE_FIELDS = ['key-id', 'signature', 'comment'] as const;
type SignatureField = (typeof V2_FIELDS)[number] | (typeof ENVELOPE_FIELDS)[number];

/**
 * The fields of a .sig file, checked for form only (nothing is verified). Throws UnsignedError,
 * MalformedSignatureError, or LegacySignatureError for a v1 feed signature.
 */
export function parseSignature(sigText: string | null | undefined): ParsedSignature {
  if (sigText === null || sigText === undefined || sigText.trim() === '') throw new UnsignedError('there is no signature (the .sig is missing or empty)');
  const lines = sigText.split('\n').map((l) => l.replace(/\r$/, ''));
  let i = 0;
  while (i < lines.length && lines[i]!.trim() === '') i++;
  const first = lines[i]!.trim();
  if (first !== SIGNATURE_HEADER_V1 && first !== SIGNATURE_HEADER_V2) {
    const hint = /^-----BEGIN PGP/.test(first)
      ? ' (this is an OpenPGP signature; storm uses its own format, made by `storm sign`)'
      : /^untrusted comment:/.test(first)
        ? ' (this is a minisign signature; storm uses its own format, made by `storm sign`)'
        : /^storm-signature-v[0-9]+$/.test(first)
          ? ' (a newer storm made it: upgrade storm to read it)'
          : '';
    throw new MalformedSignatureError(`not a storm signature: the first line must be "${SIGNATURE_HEADER_V1}" or "${SIGNATURE_HEADER_V2}"${hint}`);
  }
  const v2 = first === SIGNATURE_HEADER_V2;
  const allowed: readonly string[] = [...(v2 ? V2_FIELDS : V1_FIELDS), ...ENVELOPE_FIELDS];
  const fields = new Map<SignatureField, string>();
  for (i++; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const m = /^([a-z0-9-]+): ?(.*)$/.exec(line);
    if (!m) throw new MalformedSignatureError(`line ${i + 1} is not "field: value": ${JSON.stringify(line.slice(0, 80))}`);
    if (!allowed.includes(m[1]!)) {
      const other = (V2_FIELDS as readonly string[]).includes(m[1]!) ? ` (a ${SIGNATURE_HEADER_V2} field in a ${first})` : '';
      throw new MalformedSignatureError(`line ${i + 1}: unknown field "${m[1]}"${other}`);
    }
    const field = m[1] as SignatureField;
    if (fields.has(field)) throw new MalformedSignatureError(`line ${i + 1}: field "${field}" appears twice`);
    fields.set(field, m[2]!);
  }
  const need = (field: SignatureField): string => {
    const v = fields.get(field);
    if (v === undefined) throw new MalformedSignatureError(`the signature has no "${field}:" line`);
    return v;
  };
  const keyId = need('key-id').trim();
  if (!/^[0-9a-f]{16}$/.test(keyId)) throw new MalformedSignatureError(`key-id "${keyId}" must be 16 lowercase hex digits`);
  const purpose = need('purpose').trim();
  if (!(SIGNATURE_PURPOSES as readonly string[]).includes(purpose)) throw new MalformedSignatureError(`purpose must be one of ${SIGNATURE_PURPOSES.join(', ')}, got "${purpose}"`);
  if (!v2 && purpose === 'feed') throw new LegacySignatureError(keyId);
  if (v2 === (purpose === 'image')) {
    throw new MalformedSignatureError(`${purpose === 'image' ? 'an image' : `a ${purpose}`} signature is ${purpose === 'image' ? SIGNATURE_HEADER_V1 : SIGNATURE_HEADER_V2}, this one says ${first}`);
  }
  const name = need('name');
  const sha256 = need('sha256').trim();
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new MalformedSignatureError(`sha256 "${sha256}" must be 64 lowercase hex digits`);
  const size = wholeNumber(need('size').trim(), 'size', 'a whole number of bytes');
  const sigB64 = need('signature').trim();
  const signature = decodeBase64Strict(sigB64);
  if (signature === null || signature.length !== 64) throw new MalformedSignatureError('signature must be the base64 of 64 bytes (an Ed25519 signature)');
  try {
    checkName(name);
  } catch (e) {
    throw new MalformedSignatureError((e as Error).message);
  }
  const envelope = { keyId, signature, comment: fields.get('comment')?.trim() || null };
  const content = { name, sha256, size };
  if (purpose === 'image') return { purpose, ...content, ...envelope };
  const channel = need('channel').trim();
  let canonical: string;
  try {
    canonical = channelName(channel);
  } catch (e) {
    throw new MalformedSignatureError((e as Error).message);
  }
  if (canonical !== channel) throw new MalformedSignatureError(`channel "${channel}" is not written as storm writes it ("${canonical}")`);
  const version = wholeNumber(need('version').trim(), 'version', 'a whole number');
  if (version < 1) throw new MalformedSignatureError('version must be at least 1');
  if (purpose === 'key-rotation') {
    if (fields.has('expires')) throw new MalformedSignatureError('a key-rotation signature has no "expires:" line: a rotation does not expire');
    return { purpose, ...content, channel, version, ...envelope };
  }
  const expiresText = need('expires').trim();
  const expires = Date.parse(expiresText);
  if (!/^[0-9]{4}-/.test(expiresText) || Number.isNaN(expires) || formatTime(expires) !== expiresText) {
    throw new MalformedSignatureError(`expires "${expiresText}" must be a UTC time written like 2025-06-01T12:00:00.000Z`);
  }
  return { purpose: 'feed', ...content, channel, version, expires, ...envelope };
}

function wholeNumber(text: string, field: string, what: string): number {
  const n = Number(text);
  if (!/^(0|[1-9][0-9]*)$/.test(text) || !Number.isSafeInteger(n)) throw new MalformedSignatureError(`${field} "${text}" must be ${what}`);
  return n;
}

export interface ExpectedContent {
  purpose: SignaturePurpose;
  sha256: string;
  /** Checked when given. */
  size?: number;
  /** Checked when given; names change between publisher and cache, so usually not. */
  name?: string;
  /** Feeds and key rotations: the channel (any spelling channelName accepts) they must be signed for; checked when given. */
  channel?: string;
}

export interface Verified<S extends Statement = Statement> {
  keyId: string;
  keyComment: string | null;
  statement: S;
  comment: string | null;
}

/**
 * Checks a .sig against the trusted keys and the content it should vouch for, in the order that
 * gives the most useful error: form, key, signature, then whether it is for this content and
 * channel. Whether a feed is fresh (its version and expiry) is the caller's to judge: only the
 * caller knows the time and what it has seen before (see channel/freshness.ts).
 */
export function verifySignature(sigText: string | null | undefined, trusted: readonly PublicKey[], expected: ExpectedContent): Verified {
  const sig = parseSignature(sigText);
  const candidates = trusted.filter((k) => k.keyId === sig.keyId);
  if (candidates.length === 0) throw new UnknownKeyError(sig.keyId, [...new Set(trusted.map((k) => k.keyId))]);
  const { keyId, signature, comment, ...statement } = sig;
  const message = Buffer.from(canonicalStatement(statement), 'utf8');
  const key = candidates.find((k) => verify(null, message, k.key, signature));
  if (!key) throw new BadSignatureError(keyId);
  if (statement.purpose !== expected.purpose) throw new SignatureMismatchError(keyId, 'purpose', statement.purpose, expected.purpose);
  const sha256 = normalizeSha256(expected.sha256);
  if (statement.sha256 !== sha256) throw new SignatureMismatchError(keyId, 'sha256', statement.sha256, sha256);
  if (expected.size !== undefined && statement.size !== expected.size) throw new SignatureMismatchError(keyId, 'size', String(statement.size), String(expected.size));
  if (expected.name !== undefined && statement.name !== expected.name) throw new SignatureMismatchError(keyId, 'name', statement.name, expected.name);
  if (expected.channel !== undefined && statement.purpose !== 'image') {
    const channel = channelName(expected.channel);
    if (statement.channel !== channel) throw new WrongChannelError(keyId, statement.purpose, statement.channel, channel);
  }
  return { keyId: key.keyId, keyComment: key.comment, statement, comment };
}

/** verifySignature for a feed, typed as one. */
export function verifyFeedSignature(sigText: string | null | undefined, trusted: readonly PublicKey[], expected: Omit<ExpectedContent, 'purpose'>): Verified<FeedStatement> {
  const v = verifySignature(sigText, trusted, { ...expected, purpose: 'feed' });
  if (v.statement.purpose !== 'feed') throw new SigningError('unreachable: a verified feed signature is for a feed');
  return { ...v, statement: v.statement };
}

/** Standard base64 only, in its one canonical spelling, so that a key or signature has exactly one text form. */
function decodeBase64Strict(text: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : null;
}
