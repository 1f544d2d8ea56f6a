/** An expected failure of `npm run monitors`: one line, exit 2, nothing changed unless the line says so. */
export class MonitorsError extends Error {
  override readonly name = 'MonitorsError';
}
