const HOUR_MS = 3_600_000;

/** The start of the UTC hour holding an instant, in ms since the epoch. */
export function hourStart(ms: number): number {
  return ms - (((ms % HOUR_MS) + HOUR_MS) % HOUR_MS);
}

let current = { start: Number.NaN, iso: '' };

/** The UTC hour holding an instant, ISO 8601; formatted once per hour, since every usage report needs it. */
export function hourOf(ms: number): string {
  const start = hourStart(ms);
  if (start !== current.start) current = { start, iso: new Date(start).toISOString() };
  return current.iso;
}

/** Minutes of [fromMs, toMs) in each UTC hour it touches, earliest first; empty when toMs <= fromMs. */
export function minutesByHour(fromMs: number, toMs: number): { hour: string; minutes: number }[] {
  const pieces: { hour: string; minutes: number }[] = [];
  for (let start = hourStart(fromMs); start < toMs; start += HOUR_MS) {
    const minutes = (Math.min(toMs, start + HOUR_MS) - Math.max(fromMs, start)) / 60_000;
    if (minutes > 0) pieces.push({ hour: new Date(start).toISOString(), minutes });
  }
  return pieces;
}
