// Key rotation: a channel announces its next publisher key in a small document signed by the key
// it replaces, published next to the feed, so that users who trust the old key follow without
// editing their configuration (and then are told to). One document per retired key,
//
//   keys/rotation-<old key id>.json        (relative to the feed's URL)
//   keys/rotation-<old key id>.json.sig    storm-signature-v2, purpose key-rotation, by the old key
//
//   {
//     "type": "storm-key-rotation",
//     "channel": "https://appliances.example.org/rss.xml",
//     "old": "storm-ed25519 <old id> <base64>",
//     "new": "storm-ed25519 <new id> <base64> <comment>",
//     "reason": "yearly rotation"                       (optional, free text)
//   }
//
// so that a chain k1 → k2 → k3 can be walked from any key a user still trusts. What a rotation
// cannot do is recover from a stolen key: whoever holds the old key can sign a rotation to a key
// of their own just as well (README: "Revoking a publisher key").
import { SigningError, VerificationError, channelName, formatPublicKey, parsePublicKey, signStatement, verifySignature, type PublicKey, type RotationStatement, type SecretKey } from './signing.ts';
import { createHash } from 'node:crypto';

export const ROTATION_TYPE = 'storm-key-rotation';
/** A chain longer than this is refused: years of yearly rotations, and a bound on what a plan fetches. */
export const MAX_ROTATION_STEPS = 8;
/** A rotation document is a few hundred bytes; more is not one. */
const MAX_DOCUMENT_BYTES = 16 * 1024;

export function rotationFileName(oldKeyId: string): string {
  return `rotation-${oldKeyId}.json`;
}

/** Where the rotation away from `oldKeyId` is published: keys/ next to the feed. */
export function rotationUrl(channel: string, oldKeyId: string): string {
  return new URL(`keys/${rotationFileName(oldKeyId)}`, channelName(channel)).href;
}

export interface KeyRotation {
  channel: string;
  from: PublicKey;
  to: PublicKey;
  reason: string | null;
  /** The signature's version: when the old key signed the rotation (ms). */
  version: number;
}

/** A rotation document that is there but cannot be followed; the message says why. */
export class RotationError extends VerificationError {
  override name = 'RotationError';
}

export interface MadeRotation {
  fileName: string;
  document: string;
  signature: string;
  statement: RotationStatement;
}

/** The document and its signature that retire `oldKey` in favour of `newKeyLine` for `channel`. */
export function makeRotation(oldKey: SecretKey, newKeyLine: string, channel: string, options: { reason?: string; now?: number; comment?: string } = {}): MadeRotation {
  const to = parsePublicKey(newKeyLine);
  if (to.keyId === oldKey.keyId) throw new SigningError(`the new key is the old key (${to.keyId}): a rotation names the key that replaces it`);
  const reason = options.reason?.trim();
  if (reason !== undefined && /[\u0000-\u001f\u007f]/.test(reason)) throw new SigningError('the reason must be a single line of text');
  const name = channelName(channel);
  const doc: Record<string, string> = { type: ROTATION_TYPE, channel: name, old: formatPublicKey(oldKey.publicKey), new: formatPublicKey(to) };
  if (reason) doc.reason = reason;
  const document = JSON.stringify(doc, null, 2) + '\n';
  const bytes = Buffer.from(document, 'utf8');
  const fileName = rotationFileName(oldKey.keyId);
  const statement: RotationStatement = {
    purpose: 'key-rotation',
    name: fileName,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    size: bytes.length,
    channel: name,
    version: options.now ?? Date.now(),
  };
  return { fileName, document, signature: signStatement(oldKey, statement, options.comment), statement };
}

/**
 * The rotation a document announces, if `oldKey` signed it for `channel`. Throws
 * RotationError for a document that is not a rotation away from `oldKey` for this channel,
 * and verifySignature's errors for its signature.
 */
export function verifyRotation(document: Uint8Array, sigText: string | null, oldKey: PublicKey, channel: string): KeyRotation {
  if (document.length > MAX_DOCUMENT_BYTES) throw new RotationError(`the rotation document is ${document.length} bytes; a rotation is a few hundred`);
  const expectedChannel = channelName(channel);
  const sha256 = createHash('sha256').update(document).digest('hex');
  const verified = verifySignature(sigText, [oldKey], { purpose: 'key-rotation', sha256, size: document.length, channel: expectedChannel });
  if (verified.statement.purpose !== 'key-rotation') throw new RotationError('unreachable: a verified rotation signature is for a rotation');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(document).toString('utf8'));
  } catch (e) {
    throw new RotationError(`the rotation document is not JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new RotationError('the rotation document is not a JSON object');
  const doc = parsed as Record<string, unknown>;
  for (const field of Object.keys(doc)) {
    if (!['type', 'channel', 'old', 'new', 'reason'].includes(field)) throw new RotationError(`the rotation document has an unknown field "${field}"`);
  }
  const text = (field: string, optional = false): string | null => {
    const v = doc[field];
    if (v === undefined && optional) return null;
    if (typeof v !== 'string') throw new RotationError(`the rotation document's "${field}" must be a string`);
    return v;
  };
  if (text('type') !== ROTATION_TYPE) throw new RotationError(`the rotation document's type must be "${ROTATION_TYPE}"`);
  if (text('channel') !== expectedChannel) throw new RotationError(`the rotation document is for channel ${text('channel')}, not ${expectedChannel}`);
  let from: PublicKey;
  let to: PublicKey;
  try {
    from = parsePublicKey(text('old')!);
    to = parsePublicKey(text('new')!);
  } catch (e) {
    throw new RotationError(`the rotation document names a key storm cannot read: ${(e as Error).message}`);
  }
  if (from.keyId !== oldKey.keyId || !from.raw.equals(oldKey.raw)) throw new RotationError(`the rotation document retires key ${from.keyId}, but key ${oldKey.keyId} signed it`);
  if (to.keyId === from.keyId) throw new RotationError('the rotation document names the same key as old and new');
  return { channel: expectedChannel, from: oldKey, to, reason: text('reason', true), version: verified.statement.version };
}
