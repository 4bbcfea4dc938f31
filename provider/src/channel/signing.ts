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
// multi-GiB image is signed by the sha256 that storm computes anyway while downloading it:
//
//   storm-signature-v1\n
//   purpose: image|feed\n
//   name: <file name or appliance id>\n
//   sha256: <64 lowercase hex digits>\n
//   size: <bytes, decimal>\n
//
// The purpose keeps a feed signature from passing for an image signature of the same bytes and
// the other way round. The name is informative (files get renamed in caches and mirrors) and is
// checked only when the verifier asks for it.
//
// Signature (`<file>.sig`), UTF-8 text, one `field: value` per line after the first:
//
//   storm-signature-v1
//   key-id: <key id>
//   purpose: image|feed
//   name: <name>
//   sha256: <hex>
//   size: <bytes>
//   signature: <base64 of the 64-byte Ed25519 signature over the canonical statement>
//   comment: <optional free text>
//
// The statement is rebuilt from the purpose, name, sha256 and size lines. The `comment:` line is
// NOT covered by the signature: anyone can change it, so it must never be trusted. The key-id line
// is not covered either; it only picks the key to try. Fields may come in any order, each at most
// once; unknown fields, a missing field, or text before the first line make the file malformed.
// CRLF line ends and blank lines are tolerated, since .sig files pass through editors and web
// servers.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';

export const PUBLIC_KEY_PREFIX = 'storm-ed25519';
export const SIGNATURE_HEADER = 'storm-signature-v1';

export type SignaturePurpose = 'image' | 'feed';
export const SIGNATURE_PURPOSES: readonly SignaturePurpose[] = ['image', 'feed'];

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

export interface Statement {
  purpose: SignaturePurpose;
  name: string;
  sha256: string;
  size: number;
}

export interface ParsedSignature extends Statement {
  keyId: string;
  signature: Buffer;
  comment: string | null;
}

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
        ? `it was made for purpose "${signed}" and purpose "${actual}" was expected: a signature made for one purpose never vouches for the other`
        : `it is for ${field} ${signed} while the ${field} here is ${actual}: the file was modified after signing, or the signature belongs to another file`;
    super(`the signature by key ${keyId} is valid, but ${why}`);
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

/** The exact bytes that are signed, after checking that the fields cannot smuggle in extra lines. */
export function canonicalStatement(statement: Statement): string {
  const s = normalizeStatement(statement);
  return `${SIGNATURE_HEADER}\npurpose: ${s.purpose}\nname: ${s.name}\nsha256: ${s.sha256}\nsize: ${s.size}\n`;
}

function normalizeStatement(statement: Statement): Statement {
  const { purpose, name, size } = statement;
  if (!SIGNATURE_PURPOSES.includes(purpose)) throw new SigningError(`purpose must be "image" or "feed", got "${String(purpose)}"`);
  checkName(name);
  const sha256 = normalizeSha256(statement.sha256);
  if (!Number.isSafeInteger(size) || size < 0) throw new SigningError(`size must be a whole number of bytes, got ${size}`);
  return { purpose, name, sha256, size };
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
  const signature = sign(null, Buffer.from(canonicalStatement(s), 'utf8'), secretKey.key);
  const lines = [
    SIGNATURE_HEADER,
    `key-id: ${secretKey.keyId}`,
    `purpose: ${s.purpose}`,
    `name: ${s.name}`,
    `sha256: ${s.sha256}`,
    `size: ${s.size}`,
    `signature: ${signature.toString('base64')}`,
  ];
  const c = comment?.trim();
  if (c) {
    if (/[\r\n]/.test(c)) throw new SigningError('the signature comment must be a single line');
    lines.push(`comment: ${c}`);
  }
  return lines.join('\n') + '\n';
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

export async function signFile(secretKey: SecretKey, file: string, purpose: SignaturePurpose, options: SignFileOptions = {}): Promise<SignedFile> {
  const name = options.name ?? path.basename(file);
  // Fail on a bad name before hashing GiB.
  checkName(name);
  const { sha256, size } = await hashFile(file, options.onProgress);
  const statement: Statement = { purpose, name, sha256, size };
  return { signature: signStatement(secretKey, statement, options.comment), statement };
}

const SIGNATURE_FIELDS = ['key-id', 'purpose', 'name', 'sha256', 'size', 'signature', 'comment'] as const;
type SignatureField = (typeof SIGNATURE_FIELDS)[number];

/** The fields of a .sig file, checked for form only (nothing is verified). Throws UnsignedError or MalformedSignatureError. */
export function parseSignature(sigText: string | null | undefined): ParsedSignature {
  if (sigText === null || sigText === undefined || sigText.trim() === '') throw new UnsignedError('there is no signature (the .sig is missing or empty)');
  const lines = sigText.split('\n').map((l) => l.replace(/\r$/, ''));
  let i = 0;
  while (i < lines.length && lines[i]!.trim() === '') i++;
  const first = lines[i]!.trim();
  if (first !== SIGNATURE_HEADER) {
    const hint = /^-----BEGIN PGP/.test(first)
      ? ' (this is an OpenPGP signature; storm uses its own format, made by `storm sign`)'
      : /^untrusted comment:/.test(first)
        ? ' (this is a minisign signature; storm uses its own format, made by `storm sign`)'
        : '';
    throw new MalformedSignatureError(`not a storm signature: the first line must be "${SIGNATURE_HEADER}"${hint}`);
  }
  const fields = new Map<SignatureField, string>();
  for (i++; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const m = /^([a-z0-9-]+): ?(.*)$/.exec(line);
    if (!m) throw new MalformedSignatureError(`line ${i + 1} is not "field: value": ${JSON.stringify(line.slice(0, 80))}`);
    const field = m[1]! as SignatureField;
    if (!SIGNATURE_FIELDS.includes(field)) throw new MalformedSignatureError(`line ${i + 1}: unknown field "${m[1]}"`);
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
  if (purpose !== 'image' && purpose !== 'feed') throw new MalformedSignatureError(`purpose must be "image" or "feed", got "${purpose}"`);
  const name = need('name');
  const sha256 = need('sha256').trim();
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new MalformedSignatureError(`sha256 "${sha256}" must be 64 lowercase hex digits`);
  const sizeText = need('size').trim();
  const size = Number(sizeText);
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText) || !Number.isSafeInteger(size)) throw new MalformedSignatureError(`size "${sizeText}" must be a whole number of bytes`);
  const sigB64 = need('signature').trim();
  const signature = decodeBase64Strict(sigB64);
  if (signature === null || signature.length !== 64) throw new MalformedSignatureError('signature must be the base64 of 64 bytes (an Ed25519 signature)');
  try {
    checkName(name);
  } catch (e) {
    throw new MalformedSignatureError((e as Error).message);
  }
  const comment = fields.get('comment')?.trim() || null;
  return { keyId, purpose, name, sha256, size, signature, comment };
}

export interface ExpectedContent {
  purpose: SignaturePurpose;
  sha256: string;
  /** Checked when given. */
  size?: number;
  /** Checked when given; names change between publisher and cache, so usually not. */
  name?: string;
}

/**
 * Checks a .sig against the trusted keys and the content it should vouch for, in the order that
 * gives the most useful error: form, key, signature, then whether it is for this content.
 */
export function verifySignature(
  sigText: string | null | undefined,
  trusted: readonly PublicKey[],
  expected: ExpectedContent,
): { keyId: string; keyComment: string | null; statement: Statement; comment: string | null } {
  const sig = parseSignature(sigText);
  const candidates = trusted.filter((k) => k.keyId === sig.keyId);
  if (candidates.length === 0) throw new UnknownKeyError(sig.keyId, [...new Set(trusted.map((k) => k.keyId))]);
  const statement: Statement = { purpose: sig.purpose, name: sig.name, sha256: sig.sha256, size: sig.size };
  const message = Buffer.from(canonicalStatement(statement), 'utf8');
  const key = candidates.find((k) => verify(null, message, k.key, sig.signature));
  if (!key) throw new BadSignatureError(sig.keyId);
  if (sig.purpose !== expected.purpose) throw new SignatureMismatchError(sig.keyId, 'purpose', sig.purpose, expected.purpose);
  const sha256 = normalizeSha256(expected.sha256);
  if (sig.sha256 !== sha256) throw new SignatureMismatchError(sig.keyId, 'sha256', sig.sha256, sha256);
  if (expected.size !== undefined && sig.size !== expected.size) throw new SignatureMismatchError(sig.keyId, 'size', String(sig.size), String(expected.size));
  if (expected.name !== undefined && sig.name !== expected.name) throw new SignatureMismatchError(sig.keyId, 'name', sig.name, expected.name);
  return { keyId: key.keyId, keyComment: key.comment, statement, comment: sig.comment };
}

/** Standard base64 only, in its one canonical spelling, so that a key or signature has exactly one text form. */
function decodeBase64Strict(text: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : null;
}
