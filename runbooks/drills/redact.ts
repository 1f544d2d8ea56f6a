/**
 * Replaces the password of every `user:password@host` in a text (URLs with or without a scheme, malformed
 * ones included) with `***`, so no message of the drills echoes a credential.
 */
export function redactCredentials(text: string): string {
  return text.replace(/(^|[\s"'(=/])([^\s"'(:/@]*):[^\s"'@/]+@/g, '$1$2:***@');
}
