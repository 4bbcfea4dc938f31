// A store's URL as it may be shown (logs, errors): without its password.
/** The URL as it may be printed: without its password, whether in the userinfo or a parameter. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    // Only when there is one: rewriting the query would re-encode the other parameters.
    const secrets = [...u.searchParams.keys()].filter((key) => /pass/i.test(key));
    for (const key of secrets) u.searchParams.delete(key);
    return u.toString();
  } catch {
    // Unparsable (a password with a bare '#' or '/', say): everything from the user's ':' to
    // the last '@' goes, at worst with some of the URL that was no secret.
    return url.replace(/^([a-z]+:\/\/[^/:@]*):.*@/i, '$1@').replace(/([?&][^=&]*pass[^=&]*=)[^&]*/gi, '$1');
  }
}
