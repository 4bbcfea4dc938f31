import { NAME_PATTERN, NAME_RULE, SHA256_PATTERN, VERSION_PATTERN, VERSION_RULE } from '../rules.ts';
import type { Validator } from './model.ts';

export function oneOf(...allowed: string[]): Validator {
  return (v) => (allowed.includes(String(v)) ? undefined : `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, not "${v}".`);
}

export function matches(pattern: RegExp, what: string): Validator {
  return (v) => (pattern.test(String(v)) ? undefined : `"${v}" is not ${what}.`);
}

export function between(min: number, max: number): Validator {
  return (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
      ? undefined
      : `must be a whole number from ${min} to ${max}, not ${v}.`;
}

/** A number (fractions allowed) from min to max: shares, thresholds. */
export function inRange(min: number, max: number): Validator {
  return (v) => (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max ? undefined : `must be a number from ${min} to ${max}, not ${v}.`);
}

export function absolutePath(): Validator {
  return (v) => {
    const s = String(v);
    if (!s.startsWith('/')) return `"${s}" is not an absolute path; write it from the root, e.g. "/var/lib/libvirt/storm".`;
    if (s.split('/').includes('..')) return `"${s}" contains "..": name the directory directly.`;
    return undefined;
  };
}

export const nameValidator: Validator = matches(NAME_PATTERN, `a valid name: ${NAME_RULE}`);
export const versionValidator: Validator = matches(VERSION_PATTERN, `a version: ${VERSION_RULE}`);
export const sha256Validator: Validator = matches(SHA256_PATTERN, "a sha256: write the 64 lowercase hex digits of the image's SHA-256 (sha256sum prints it)");
export const imageUrlValidator: Validator = matches(/^(https?:\/\/\S+|file:\/\/\/\S+|\/\S+)$/, 'an image source: use an http(s):// URL, a file:/// URL or an absolute path');
export const fileModeValidator: Validator = matches(/^0?[0-7]{3}$/, 'an octal mode like "0644"');
export const channelUrlValidator: Validator = matches(/^(https?:\/\/\S+|file:\/\/\/\S+|\/\S+)$/, 'a channel feed URL: use the http(s) URL of its rss.xml (or a file:/// URL)');
