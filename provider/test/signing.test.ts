import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BadSignatureError,
  LegacySignatureError,
  MalformedSignatureError,
  PublicKeyFormatError,
  SecretKeyError,
  SignatureMismatchError,
  SigningError,
  UnknownKeyError,
  UnsignedError,
  canonicalStatement,
  generateKeyPair,
  keyIdOf,
  loadSecretKey,
  parsePublicKey,
  parsePublicKeys,
  parseSignature,
  signFile,
  signStatement,
  verifySignature,
} from '../src/channel/signing.ts';
import type { PublicKey, SecretKey, Statement } from '../src/channel/signing.ts';
import { keygenCommand, signCommand, verifyCommand } from '../src/cli/keys.ts';
import type { KeysCommandIO } from '../src/cli/keys.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MiB = 1024 * 1024;
const EMPTY_SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

// Generated once with crypto.generateKeyPairSync('ed25519'); the expected public key line and
// signature were cross-checked with `openssl pkeyutl -sign -rawin` over the same statement.
const FIXED_PEM = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIKxo4eiOlpTMkwYobsdSW8SDkvimDZ0MDwhcWLR1GXUp
-----END PRIVATE KEY-----
`;
// The same key, exported encrypted (aes-256-cbc) with the passphrase "correct horse".
const FIXED_ENCRYPTED_PEM = `-----BEGIN ENCRYPTED PRIVATE KEY-----
MIGjMF8GCSqGSIb3DQEFDTBSMDEGCSqGSIb3DQEFDDAkBBBCym9zphwhiTWSk4LA
SQRhAgIIADAMBggqhkiG9w0CCQUAMB0GCWCGSAFlAwQBKgQQV7nIyxOnIFRfI/aS
ZeyNPwRAkjqwH4a/F2CpfoPaLr+AXtPKK1f2IfsQaaLfGGwSOvNQyGFz4/i8DeKo
GM1y9kEJmgTNmsc4DR+HWdo6vhBmTw==
-----END ENCRYPTED PRIVATE KEY-----
`;
const FIXED_PUB = 'storm-ed25519 b2a16655e4cbdb26 HjjMZv7ShkVBQAoIy9XRtKy4xyFL3ndmRbmbYDf0um0=';
const FIXED_STATEMENT: Statement = { purpose: 'image', name: 'webserv-1.0.0-0.qcow2', sha256: EMPTY_SHA, size: 0 };
const FIXED_SIG = `storm-signature-v1
key-id: b2a16655e4cbdb26
purpose: image
name: webserv-1.0.0-0.qcow2
sha256: ${EMPTY_SHA}
size: 0
signature: CKSwtU/fZ25MLvMleZzNhlDG1OXAU0pca0+GE1w83z8adLyJqd+YA26X2D2Tv3gb5FT/CgE49LGRwsUNOTwYAw==
`;

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

function newKey(comment?: string): { secret: SecretKey; pub: PublicKey; line: string } {
  const pair = generateKeyPair(comment);
  return { secret: loadSecretKey(pair.secretKeyPem), pub: parsePublicKey(pair.publicKeyLine), line: pair.publicKeyLine };
}

/** The .sig text with one field's value replaced. */
function withField(sig: string, field: string, value: string): string {
  const re = new RegExp(`^${field}: .*$`, 'm');
  assert.match(sig, re);
  return sig.replace(re, `${field}: ${value}`);
}

describe('keys', () => {
  test('generated key pairs round-trip through the public key line and the PEM', () => {
    const pair = generateKeyPair('example channel <ops@example.org>');
    assert.match(pair.publicKeyLine, /^storm-ed25519 [0-9a-f]{16} [A-Za-z0-9+/]{43}= example channel <ops@example\.org>$/);
    assert.match(pair.secretKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    const pub = parsePublicKey(pair.publicKeyLine);
    assert.equal(pub.keyId, pair.keyId);
    assert.equal(pub.raw.length, 32);
    assert.equal(pub.keyId, keyIdOf(pub.raw));
    assert.equal(pub.comment, 'example channel <ops@example.org>');
    const secret = loadSecretKey(pair.secretKeyPem);
    assert.equal(secret.keyId, pair.keyId);
    assert.deepEqual(secret.publicKey.raw, pub.raw);
    assert.equal(parsePublicKey(pair.publicKeyLine.split(' ').slice(0, 3).join(' ')).comment, null);
    assert.notEqual(generateKeyPair().keyId, pair.keyId);
    assert.throws(() => generateKeyPair('two\nlines'), SigningError);
  });

  test('parsePublicKey says what is wrong with a line', () => {
    const { line, pub } = newKey();
    const [, id, b64] = line.split(' ') as [string, string, string];
    const cases: [string, RegExp][] = [
      ['', /empty/],
      ['   ', /empty/],
      [`ssh-ed25519 ${b64}`, /must start with "storm-ed25519 "/],
      [`untrusted comment: minisign public key`, /not a storm public key/],
      ['storm-ed25519', /incomplete/],
      [`storm-ed25519 ${id}`, /incomplete/],
      // Upper case always (an id of digits only reads the same upper-cased).
      [`storm-ed25519 ${id.slice(0, 15)}A ${b64}`, /16 lowercase hex/],
      [`storm-ed25519 ${id.slice(1)} ${b64}`, /16 lowercase hex/],
      [`storm-ed25519 ${id} ${b64.replace('=', '')}`, /not valid base64/],
      [`storm-ed25519 ${id} ${b64.slice(0, -1)}!`, /not valid base64/],
      [`storm-ed25519 ${id} AAAA`, /3 bytes; an Ed25519 public key has 32/],
      [`storm-ed25519 ${'0'.repeat(16)} ${b64}`, new RegExp(`does not match the key \\(whose id is ${pub.keyId}\\)`)],
      [`${line}\n${line}`, /single line/],
    ];
    for (const [text, message] of cases) {
      assert.throws(() => parsePublicKey(text), (e: unknown) => e instanceof PublicKeyFormatError && message.test(e.message), text);
    }
    // Whitespace around the line (a pasted .pub with its newline) is fine.
    assert.equal(parsePublicKey(`  ${line}\n`).keyId, pub.keyId);
  });

  test('parsePublicKeys reads a file of keys, skipping blank and # lines, and names a bad line', () => {
    const a = newKey('a');
    const b = newKey('b');
    const keys = parsePublicKeys(`# channel keys\n${a.line}\n\n${b.line}\r\n`);
    assert.deepEqual(
      keys.map((k) => [k.keyId, k.comment]),
      [
        [a.pub.keyId, 'a'],
        [b.pub.keyId, 'b'],
      ],
    );
    assert.throws(() => parsePublicKeys(`${a.line}\nstorm-ed25519 nope`), /^PublicKeyFormatError: line 2: /);
  });

  test('secret keys: only Ed25519 PKCS#8 PEM', () => {
    assert.throws(() => loadSecretKey('hello'), (e: unknown) => e instanceof SecretKeyError && /PKCS#8 PEM/.test(e.message));
    assert.throws(() => loadSecretKey(FIXED_PUB), SecretKeyError);
    assert.throws(() => loadSecretKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), /cannot be read/);
  });

  test('an encrypted secret key needs its passphrase, and a wrong one gets a clear error', () => {
    const pair = generateKeyPair(undefined, 'hunter2 hunter2');
    assert.match(pair.secretKeyPem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    assert.throws(() => loadSecretKey(pair.secretKeyPem), (e: unknown) => e instanceof SecretKeyError && /encrypted.*STORM_KEY_PASSPHRASE/.test(e.message));
    assert.throws(() => loadSecretKey(pair.secretKeyPem, ''), /encrypted/);
    assert.throws(() => loadSecretKey(pair.secretKeyPem, 'hunter3'), (e: unknown) => e instanceof SecretKeyError && /wrong passphrase/.test(e.message));
    assert.equal(loadSecretKey(pair.secretKeyPem, 'hunter2 hunter2').keyId, pair.keyId);
    // An empty passphrase means "do not encrypt", as an empty STORM_KEY_PASSPHRASE does.
    assert.match(generateKeyPair(undefined, '').secretKeyPem, /^-----BEGIN PRIVATE KEY-----/);
  });

  test('the fixed encrypted key vector decrypts (PKCS#8 PBES2 as this Node and OpenSSL read it)', () => {
    const key = loadSecretKey(FIXED_ENCRYPTED_PEM, 'correct horse');
    assert.equal(key.keyId, 'b2a16655e4cbdb26');
    assert.throws(() => loadSecretKey(FIXED_ENCRYPTED_PEM, 'correct horse '), /wrong passphrase/);
  });
});

describe('signatures', () => {
  const signer = newKey('signer');
  const other = newKey('other');
  const statement: Statement = { purpose: 'image', name: 'webserv-1.0.0-0.qcow2', sha256: sha('image bytes'), size: 11 };
  const sig = signStatement(signer.secret, statement);

  test('the canonical statement is exactly the documented text', () => {
    assert.equal(
      canonicalStatement({ purpose: 'image', name: 'base.qcow2', sha256: EMPTY_SHA.toUpperCase(), size: 42 }),
      `storm-signature-v1\npurpose: image\nname: base.qcow2\nsha256: ${EMPTY_SHA}\nsize: 42\n`,
    );
    assert.equal(
      canonicalStatement({ purpose: 'feed', name: 'rss.xml', sha256: EMPTY_SHA, size: 42, channel: 'HTTPS://Example.org:443/rss.xml#x', version: 1717243200000, expires: 1717848000000 }),
      `storm-signature-v2\npurpose: feed\nname: rss.xml\nsha256: ${EMPTY_SHA}\nsize: 42\nchannel: https://example.org/rss.xml\nversion: 1717243200000\nexpires: 2024-06-08T12:00:00.000Z\n`,
    );
    assert.equal(
      canonicalStatement({ purpose: 'key-rotation', name: 'rotation-b2a16655e4cbdb26.json', sha256: EMPTY_SHA, size: 42, channel: '/srv/channel/rss.xml', version: 7 }),
      `storm-signature-v2\npurpose: key-rotation\nname: rotation-b2a16655e4cbdb26.json\nsha256: ${EMPTY_SHA}\nsize: 42\nchannel: file:///srv/channel/rss.xml\nversion: 7\n`,
    );
  });

  test('the fixed key gives the fixed public key line and the same signature every time', () => {
    const key = loadSecretKey(FIXED_PEM);
    assert.equal(key.keyId, 'b2a16655e4cbdb26');
    assert.equal(`storm-ed25519 ${key.keyId} ${key.publicKey.raw.toString('base64')}`, FIXED_PUB);
    assert.equal(signStatement(key, FIXED_STATEMENT), FIXED_SIG);
    assert.equal(signStatement(key, FIXED_STATEMENT), signStatement(key, FIXED_STATEMENT));
    assert.equal(verifySignature(FIXED_SIG, [parsePublicKey(FIXED_PUB)], { purpose: 'image', sha256: EMPTY_SHA, size: 0 }).keyId, 'b2a16655e4cbdb26');
  });

  test('sign then verify', () => {
    assert.match(sig, /^storm-signature-v1\nkey-id: [0-9a-f]{16}\npurpose: image\nname: webserv-1\.0\.0-0\.qcow2\nsha256: [0-9a-f]{64}\nsize: 11\nsignature: [A-Za-z0-9+/]{86}==\n$/);
    const result = verifySignature(sig, [other.pub, signer.pub], { purpose: 'image', sha256: statement.sha256, size: 11 });
    assert.equal(result.keyId, signer.pub.keyId);
    assert.equal(result.keyComment, 'signer');
    assert.deepEqual(result.statement, statement);
    // Size and name are checked only when the caller knows them; sha256 may come in any case.
    assert.equal(verifySignature(sig, [signer.pub], { purpose: 'image', sha256: `sha256:${statement.sha256.toUpperCase()}` }).keyId, signer.pub.keyId);
    assert.equal(verifySignature(sig, [signer.pub], { purpose: 'image', sha256: statement.sha256, name: statement.name }).keyId, signer.pub.keyId);
  });

  test('a valid signature for other content is a SignatureMismatchError naming what differs', () => {
    const cases: [Parameters<typeof verifySignature>[2], string, RegExp][] = [
      [{ purpose: 'image', sha256: sha('tampered'), size: 11 }, 'sha256', /is for sha256 [0-9a-f]{64} while the sha256 here is [0-9a-f]{64}: the file was modified after signing/],
      [{ purpose: 'feed', sha256: statement.sha256 }, 'purpose', /made for purpose "image" and purpose "feed" was expected/],
      [{ purpose: 'image', sha256: statement.sha256, size: 12 }, 'size', /is for size 11 while the size here is 12/],
      [{ purpose: 'image', sha256: statement.sha256, name: 'other.qcow2' }, 'name', /is for name webserv-1\.0\.0-0\.qcow2 while the name here is other\.qcow2/],
    ];
    for (const [expected, field, message] of cases) {
      assert.throws(
        () => verifySignature(sig, [signer.pub], expected),
        (e: unknown) => e instanceof SignatureMismatchError && e.field === field && e.keyId === signer.pub.keyId && message.test(e.message),
        field,
      );
    }
  });

  test('a changed signature byte, or a signed field edited to match tampered content, is a BadSignatureError', () => {
    const sigLine = /^signature: (.*)$/m.exec(sig)![1]!;
    const bytes = Buffer.from(sigLine, 'base64');
    bytes[10]! ^= 0x01;
    const flipped = withField(sig, 'signature', bytes.toString('base64'));
    assert.throws(() => verifySignature(flipped, [signer.pub], { purpose: 'image', sha256: statement.sha256 }), BadSignatureError);

    // An attacker who replaces the image and rewrites the sha256 (and purpose, size, name) in the .sig.
    const expected = { purpose: 'image' as const, sha256: sha('evil'), size: 4 };
    for (const [field, value] of [['sha256', expected.sha256], ['size', '12'], ['name', 'evil.qcow2']] as const) {
      assert.throws(
        () => verifySignature(withField(sig, field, value), [signer.pub], expected),
        (e: unknown) => e instanceof BadSignatureError && /does not verify with key/.test(e.message),
        field,
      );
    }
    // An image signature relabelled as a feed's reads as an old-format feed signature: refused before any key is tried.
    assert.throws(() => verifySignature(withField(sig, 'purpose', 'feed'), [signer.pub], { ...expected, purpose: 'feed' }), LegacySignatureError);
    // A key id pointed at another trusted key: that key does not verify it either.
    const reassigned = withField(sig, 'key-id', other.pub.keyId);
    assert.throws(() => verifySignature(reassigned, [signer.pub, other.pub], { purpose: 'image', sha256: statement.sha256 }), BadSignatureError);
  });

  test('the comment line is not covered by the signature', () => {
    const commented = signStatement(signer.secret, statement, 'built by CI run 1234');
    assert.match(commented, /\ncomment: built by CI run 1234\n$/);
    const edited = withField(commented, 'comment', 'anything at all');
    const result = verifySignature(edited, [signer.pub], { purpose: 'image', sha256: statement.sha256 });
    assert.equal(result.comment, 'anything at all');
    assert.throws(() => signStatement(signer.secret, statement, 'a\nb'), SigningError);
  });

  test('an untrusted key is an UnknownKeyError listing the trusted ids and how to add one', () => {
    assert.throws(
      () => verifySignature(sig, [other.pub], { purpose: 'image', sha256: statement.sha256 }),
      (e: unknown) =>
        e instanceof UnknownKeyError &&
        e.keyId === signer.pub.keyId &&
        e.message.includes(`the trusted keys are ${other.pub.keyId}`) &&
        e.message.includes(`storm-ed25519 ${signer.pub.keyId}`) &&
        e.message.includes('trusted_keys'),
    );
    assert.throws(() => verifySignature(sig, [], { purpose: 'image', sha256: statement.sha256 }), (e: unknown) => e instanceof UnknownKeyError && /no keys are trusted/.test(e.message));
  });

  test('no signature, or an empty one, is an UnsignedError', () => {
    for (const text of [null, undefined, '', ' \n\r\n ']) {
      assert.throws(() => verifySignature(text, [signer.pub], { purpose: 'image', sha256: statement.sha256 }), UnsignedError, JSON.stringify(text));
    }
  });

  test('malformed signature files are MalformedSignatureErrors saying what is wrong', () => {
    const drop = (field: string): string => sig.replace(new RegExp(`^${field}: .*\\n`, 'm'), '');
    const cases: [string, RegExp][] = [
      ['hello\n', /first line must be "storm-signature-v1" or "storm-signature-v2"/],
      ['-----BEGIN PGP SIGNATURE-----\n\niQ==\n-----END PGP SIGNATURE-----\n', /OpenPGP signature/],
      ['untrusted comment: signature from minisign secret key\nRUQ=\n', /minisign signature/],
      ['storm-signature-v3\n', /first line.*a newer storm made it/],
      [sig.replace('storm-signature-v1', 'storm-signature-v2'), /an image signature is storm-signature-v1/],
      [`${sig}channel: https://example.org/rss.xml\n`, /unknown field "channel" \(a storm-signature-v2 field in a storm-signature-v1\)/],
      [drop('key-id'), /no "key-id:" line/],
      [drop('sha256'), /no "sha256:" line/],
      [drop('signature'), /no "signature:" line/],
      [`${sig}size: 11\n`, /line 8: field "size" appears twice/],
      [`${sig}x-extra: 1\n`, /unknown field "x-extra"/],
      [sig.replace('\nname:', '\nName:'), /line 4 is not "field: value"/],
      [withField(sig, 'key-id', 'B2A16655E4CBDB26'), /key-id .* 16 lowercase hex/],
      [withField(sig, 'purpose', 'kernel'), /purpose must be one of image, feed, key-rotation/],
      [withField(sig, 'purpose', 'key-rotation'), /a key-rotation signature is storm-signature-v2/],
      [withField(sig, 'sha256', 'abc'), /sha256 .* 64 lowercase hex/],
      [withField(sig, 'size', '-1'), /size "-1" must be a whole number/],
      [withField(sig, 'size', '011'), /whole number/],
      [withField(sig, 'size', '1.5'), /whole number/],
      [withField(sig, 'size', '99999999999999999999'), /whole number/],
      [withField(sig, 'signature', 'AAAA'), /base64 of 64 bytes/],
      [withField(sig, 'signature', 'not base64!'), /base64 of 64 bytes/],
      [withField(sig, 'name', ' padded'), /starts or ends with spaces/],
      [withField(sig, 'name', 'a\u0007b'), /control characters/],
    ];
    for (const [text, message] of cases) {
      assert.throws(
        () => verifySignature(text, [signer.pub], { purpose: 'image', sha256: statement.sha256 }),
        (e: unknown) => e instanceof MalformedSignatureError && message.test(e.message),
        `${message} for ${JSON.stringify(text.slice(0, 60))}`,
      );
    }
  });

  test('CRLF line ends, blank lines and reordered fields still parse', () => {
    const lines = sig.trimEnd().split('\n');
    const reordered = ['', lines[0], lines[6], lines[5], '', lines[4], lines[3], lines[2], lines[1], ''].join('\r\n');
    assert.equal(verifySignature(reordered, [signer.pub], { purpose: 'image', sha256: statement.sha256, size: 11 }).keyId, signer.pub.keyId);
    assert.equal(parseSignature(reordered).name, statement.name);
  });

  test('statements that could not be parsed back are refused at signing time', () => {
    assert.throws(() => signStatement(signer.secret, { ...statement, name: 'a\nsha256: 00' }), /control characters/);
    assert.throws(() => signStatement(signer.secret, { ...statement, name: '' }), /empty/);
    assert.throws(() => signStatement(signer.secret, { ...statement, sha256: 'xyz' }), /64 hex digits/);
    assert.throws(() => signStatement(signer.secret, { ...statement, size: -1 }), /whole number/);
    assert.throws(() => signStatement(signer.secret, { ...statement, size: 1.5 }), /whole number/);
  });
});

describe('files and the CLI', () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'storm-signing-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  function captureIO(env: NodeJS.ProcessEnv = {}): KeysCommandIO & { out: () => string; err: () => string } {
    let out = '';
    let err = '';
    return {
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: (t: string) => (err += t) },
      env: { HOME: dir, ...env },
      out: () => out,
      err: () => err,
    };
  }

  test('signFile hashes in chunks, reporting progress', async () => {
    const file = path.join(dir, 'chunks.img');
    const data = randomBytes(5 * MiB + 123);
    await fs.writeFile(file, data);
    const seen: number[] = [];
    const { secret } = newKey();
    const signed = await signFile(secret, file, 'image', { onProgress: (n) => seen.push(n) });
    assert.deepEqual(signed.statement, { purpose: 'image', name: 'chunks.img', sha256: createHash('sha256').update(data).digest('hex'), size: data.length });
    assert.ok(seen.length >= 6, `progress calls: ${seen.length}`);
    assert.equal(seen.at(-1), data.length);
    seen.forEach((n, i) => assert.ok(n - (seen[i - 1] ?? 0) <= MiB && n > (seen[i - 1] ?? 0)));
  });

  test('signFile consumes a file as it is produced, never waiting for the whole of it', { skip: process.platform === 'win32' }, async () => {
    // A FIFO has no end until the writer closes it: the first chunk can only be hashed before
    // the writer finishes if the signer streams rather than reads the file whole.
    const fifo = path.join(dir, 'stream.fifo');
    execFileSync('mkfifo', [fifo]);
    const { secret } = newKey();
    let firstProgress!: () => void;
    const gotFirst = new Promise<void>((resolve) => (firstProgress = resolve));
    const signing = signFile(secret, fifo, 'image', { name: 'stream.img', onProgress: () => firstProgress() });
    const writer = await fs.open(fifo, 'w');
    const chunk = randomBytes(MiB);
    await writer.write(chunk);
    const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), 10_000).unref());
    assert.notEqual(await Promise.race([gotFirst.then(() => 'progress'), timeout]), 'timeout', 'no progress before the writer finished');
    await writer.write(chunk);
    await writer.close();
    const signed = await signing;
    assert.equal(signed.statement.size, 2 * MiB);
    assert.equal(signed.statement.sha256, createHash('sha256').update(chunk).update(chunk).digest('hex'));
  });

  test('keygen → sign a 5 MiB image → verify OK → one byte changed → verify fails naming the mismatch', async () => {
    const prefix = path.join(dir, 'e2e', 'publisher');
    const keygenIO = captureIO();
    assert.equal(await keygenCommand(['--out', prefix, '--comment', 'example channel'], keygenIO), 0, keygenIO.err());
    const pubLine = (await fs.readFile(`${prefix}.pub`, 'utf8')).trim();
    const pub = parsePublicKey(pubLine);
    assert.equal(pub.comment, 'example channel');
    assert.ok(keygenIO.out().includes(pubLine));
    assert.match(keygenIO.out(), /trusted_keys/);
    assert.equal((await fs.stat(`${prefix}.key`)).mode & 0o777, 0o600);

    const image = path.join(dir, 'e2e', 'webserv-1.0.0-0.qcow2');
    const data = randomBytes(5 * MiB);
    await fs.writeFile(image, data);
    const signIO = captureIO();
    assert.equal(await signCommand(['--key', `${prefix}.key`, image], signIO), 0, signIO.err());
    const digest = createHash('sha256').update(data).digest('hex');
    assert.match(signIO.out(), new RegExp(`signed image "webserv-1\\.0\\.0-0\\.qcow2", sha256 ${digest}, 5\\.0 MiB`));
    const sigText = await fs.readFile(`${image}.sig`, 'utf8');
    assert.equal(parseSignature(sigText).keyId, pub.keyId);

    const okIO = captureIO();
    assert.equal(await verifyCommand(['--pub', `${prefix}.pub`, image], okIO), 0, okIO.err());
    assert.match(okIO.out(), new RegExp(`OK, a valid image signature by key ${pub.keyId} \\(example channel\\)`));
    // The key given as a line, and the purpose required explicitly.
    assert.equal(await verifyCommand(['--pub', pubLine, '--purpose', 'image', image], captureIO()), 0);

    const feedIO = captureIO();
    assert.equal(await verifyCommand(['--pub', pubLine, '--purpose', 'feed', image], feedIO), 1);
    assert.match(feedIO.err(), /FAILED: .*purpose "image" and purpose "feed" was expected/);

    data[Math.floor(data.length / 2)]! ^= 0xff;
    await fs.writeFile(image, data);
    const badIO = captureIO();
    assert.equal(await verifyCommand(['--pub', `${prefix}.pub`, image], badIO), 1);
    assert.equal(badIO.out(), '');
    assert.match(badIO.err(), new RegExp(`webserv-1\\.0\\.0-0\\.qcow2: FAILED: .*is for sha256 ${digest} while the sha256 here is [0-9a-f]{64}: the file was modified after signing`));
  });

  test('verify: a missing signature, an untrusted key, an explicit --sig, and usage errors', async () => {
    const signer = newKey();
    const stranger = newKey();
    const file = path.join(dir, 'feed.xml');
    await fs.writeFile(file, '<rss version="2.0"/>');
    const missing = captureIO();
    assert.equal(await verifyCommand(['--pub', signer.line, file], missing), 1);
    assert.match(missing.err(), /FAILED: not signed: there is no .*feed\.xml\.sig/);

    const signIO = captureIO();
    const keyFile = path.join(dir, 'signer.key');
    await fs.writeFile(keyFile, pemOf(signer.secret), { mode: 0o600 });
    assert.equal(await signCommand(['--key', keyFile, '--purpose', 'feed', '--channel', 'https://example.org/feed.xml', file], signIO), 0, signIO.err());
    const elsewhere = path.join(dir, 'elsewhere.sig');
    await fs.rename(`${file}.sig`, elsewhere);
    assert.equal(await verifyCommand(['--pub', signer.line, '--sig', elsewhere, file], captureIO()), 0);

    const unknown = captureIO();
    assert.equal(await verifyCommand(['--pub', stranger.line, '--sig', elsewhere, file], unknown), 1);
    assert.match(unknown.err(), new RegExp(`signed by key ${signer.pub.keyId}, which is not a trusted key \\(the trusted keys are ${stranger.pub.keyId}\\)`));

    const noPub = captureIO();
    assert.equal(await verifyCommand([file], noPub), 2);
    assert.match(noPub.err(), /--pub is required/);
    const badPub = captureIO();
    assert.equal(await verifyCommand(['--pub', 'storm-ed25519 0000000000000000 AAAA', file], badPub), 2);
    assert.match(badPub.err(), /3 bytes/);
    assert.equal(await verifyCommand(['--pub', signer.line, '--purpose', 'kernel', file], captureIO()), 2);
    assert.equal(await verifyCommand(['--pub', signer.line], captureIO()), 2);
  });

  test('keygen refuses to replace keys without --force, and --force keeps the secret key private', async () => {
    const prefix = path.join(dir, 'force', 'k');
    assert.equal(await keygenCommand(['--out', prefix], captureIO()), 0);
    const first = await fs.readFile(`${prefix}.pub`, 'utf8');
    const refused = captureIO();
    assert.equal(await keygenCommand(['--out', `${prefix}.key`], refused), 1);
    assert.match(refused.err(), /already exist; not replacing them\. Use --force/);
    assert.equal(await fs.readFile(`${prefix}.pub`, 'utf8'), first);

    await fs.chmod(`${prefix}.key`, 0o644);
    assert.equal(await keygenCommand(['--out', prefix, '--force'], captureIO()), 0);
    assert.notEqual(await fs.readFile(`${prefix}.pub`, 'utf8'), first);
    assert.equal((await fs.stat(`${prefix}.key`)).mode & 0o777, 0o600);
  });

  test('keygen defaults to the config directory', async () => {
    const config = path.join(dir, 'xdg');
    const io = captureIO({ XDG_CONFIG_HOME: config });
    assert.equal(await keygenCommand([], io), 0, io.err());
    assert.equal((await fs.stat(path.join(config, 'storm', 'publisher.key'))).mode & 0o777, 0o600);
    // sign finds it there too.
    const file = path.join(dir, 'default-key.img');
    await fs.writeFile(file, 'x');
    const signIO = captureIO({ XDG_CONFIG_HOME: config });
    assert.equal(await signCommand([file], signIO), 0, signIO.err());
    const noKey = captureIO({ XDG_CONFIG_HOME: path.join(dir, 'nowhere') });
    assert.equal(await signCommand([file], noKey), 1);
    assert.match(noKey.err(), /does not exist \(create a key with `storm keygen`, or give --key\)/);
  });

  test('STORM_KEY_PASSPHRASE encrypts the key at keygen and is needed to sign', async () => {
    const prefix = path.join(dir, 'enc', 'k');
    const env = { STORM_KEY_PASSPHRASE: 'open sesame' };
    const io = captureIO(env);
    assert.equal(await keygenCommand(['--out', prefix], io), 0, io.err());
    assert.match(io.out(), /encrypted with STORM_KEY_PASSPHRASE/);
    assert.match(await fs.readFile(`${prefix}.key`, 'utf8'), /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    const file = path.join(dir, 'enc', 'img');
    await fs.writeFile(file, 'data');

    const without = captureIO();
    assert.equal(await signCommand(['--key', `${prefix}.key`, file], without), 1);
    assert.match(without.err(), /encrypted: give its passphrase \(STORM_KEY_PASSPHRASE\)/);
    const wrong = captureIO({ STORM_KEY_PASSPHRASE: 'open sesame!' });
    assert.equal(await signCommand(['--key', `${prefix}.key`, file], wrong), 1);
    assert.match(wrong.err(), /wrong passphrase/);
    assert.equal(await signCommand(['--key', `${prefix}.key`, file], captureIO(env)), 0);
    assert.equal(await verifyCommand(['--pub', `${prefix}.pub`, file], captureIO()), 0);
  });

  test('sign: several files, a missing one, .sig files skipped, a world-readable key warned about', async () => {
    const keyFile = path.join(dir, 'multi.key');
    const { secret } = newKey();
    await fs.writeFile(keyFile, pemOf(secret), { mode: 0o644 });
    await fs.chmod(keyFile, 0o644);
    const a = path.join(dir, 'a.img');
    const b = path.join(dir, 'b.img');
    await fs.writeFile(a, 'a');
    await fs.writeFile(b, 'b');
    await fs.writeFile(`${a}.sig`, 'old');
    const io = captureIO();
    assert.equal(await signCommand(['--key', keyFile, a, path.join(dir, 'missing.img'), b, `${a}.sig`], io), 1);
    assert.match(io.err(), /readable by other users \(mode 644\)/);
    assert.match(io.err(), /missing\.img does not exist/);
    assert.match(io.err(), /skipping .*a\.img\.sig: it is a signature/);
    assert.equal(parseSignature(await fs.readFile(`${a}.sig`, 'utf8')).sha256, sha('a'));
    assert.equal(parseSignature(await fs.readFile(`${b}.sig`, 'utf8')).sha256, sha('b'));
    assert.deepEqual((await fs.readdir(dir)).filter((f) => f.endsWith('.tmp')), []);

    const named = captureIO();
    assert.equal(await signCommand(['--key', keyFile, '--name', 'webserv', '--comment', 'release 1.0', a], named), 0, named.err());
    const parsed = parseSignature(await fs.readFile(`${a}.sig`, 'utf8'));
    assert.equal(parsed.name, 'webserv');
    assert.equal(parsed.comment, 'release 1.0');
    assert.equal(await signCommand(['--key', keyFile, '--name', 'x', a, b], captureIO()), 2);
    assert.equal(await signCommand(['--key', keyFile, '--purpose', 'kernel', a], captureIO()), 2);
    assert.equal(await signCommand(['--key', keyFile], captureIO()), 2);
  });

  test('each command has --help', async () => {
    for (const [command, run] of [
      ['keygen', keygenCommand],
      ['sign', signCommand],
      ['verify', verifyCommand],
    ] as const) {
      const io = captureIO();
      assert.equal(await run(['--help'], io), 0);
      assert.match(io.out(), new RegExp(`^Usage: storm ${command} `));
      assert.match(io.out(), /Exit status:/);
    }
  });

  test('the storm executable lists and runs the commands', async () => {
    const run = (args: string[]): Promise<{ code: number | null; stdout: string }> =>
      new Promise((resolve) => {
        const child = execFile(process.execPath, ['--import', 'tsx', 'provider/src/main.ts', ...args], { cwd: REPO, timeout: 30_000 }, (_e, stdout) =>
          resolve({ code: child.exitCode, stdout }),
        );
      });
    const top = await run(['--help']);
    for (const c of ['keygen', 'sign', 'verify']) assert.match(top.stdout, new RegExp(`^  ${c} `, 'm'));
    const verify = await run(['verify', '--help']);
    assert.equal(verify.code, 0);
    assert.match(verify.stdout, /^Usage: storm verify /);
  });
});

/** The PEM of a loaded key, for tests that need a key file for a key they already hold. */
function pemOf(secret: SecretKey): string {
  return secret.key.export({ type: 'pkcs8', format: 'pem' }).toString();
}
