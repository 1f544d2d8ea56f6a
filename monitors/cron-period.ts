/** Thrown for a schedule this reader does not understand; quotes the schedule and the field. */
export class CronScheduleError extends Error {
  override readonly name = 'CronScheduleError';
}

const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day of week', min: 0, max: 7 },
] as const;

function parseField(text: string, field: (typeof FIELDS)[number], schedule: string): Set<number> {
  const values = new Set<number>();
  for (const part of text.split(',')) {
    const match = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (match === null) {
      throw new CronScheduleError(
        `schedule '${schedule}': ${field.name} '${text}' is not numbers, ranges or steps`,
      );
    }
    const from = match[1] === '*' ? field.min : Number(match[2]);
    const to =
      match[1] === '*'
        ? field.max
        : match[3] === undefined
          ? match[4]
            ? field.max
            : from
          : Number(match[3]);
    const step = match[4] === undefined ? 1 : Number(match[4]);
    if (from < field.min || to > field.max || from > to || step < 1) {
      throw new CronScheduleError(
        `schedule '${schedule}': ${field.name} '${part}' is outside ${field.min}-${field.max}`,
      );
    }
    for (let v = from; v <= to; v += step) values.add(field.name === 'day of week' && v === 7 ? 0 : v);
  }
  return values;
}

/** A five-field cron schedule (UTC), as Kubernetes CronJobs read it. */
export interface CronSchedule {
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  /** True when the schedule runs on this UTC day. */
  runsOn(day: Date): boolean;
}

export function parseCron(schedule: string): CronSchedule {
  const parts = schedule.trim().split(/\s+/);
  if (parts.length !== 5) throw new CronScheduleError(`schedule '${schedule}' must have five fields`);
  const [minute, hour, dom, month, dow] = parts.map((p, i) => parseField(p, FIELDS[i]!, schedule));
  // Standard cron: when both day fields are restricted, a day matching either one runs.
  const domAny = parts[2] === '*';
  const dowAny = parts[4] === '*';
  const sorted = (values: Set<number>) => [...values].sort((a, b) => a - b);
  return {
    minutes: sorted(minute!),
    hours: sorted(hour!),
    runsOn(day) {
      if (!month!.has(day.getUTCMonth() + 1)) return false;
      const byDom = dom!.has(day.getUTCDate());
      const byDow = dow!.has(day.getUTCDay());
      if (domAny && dowAny) return true;
      if (domAny) return byDow;
      if (dowAny) return byDom;
      return byDom || byDow;
    },
  };
}

const DAY_MS = 86_400_000;
// One year from a fixed start: long enough for weekly and monthly schedules, and the answer never drifts.
const WINDOW_START = Date.UTC(2027, 0, 1);
const WINDOW_DAYS = 366;

/** The longest gap between two consecutive runs of a schedule, in seconds: a heartbeat's period. */
export function longestIntervalSeconds(schedule: string): number {
  const cron = parseCron(schedule);
  let previous: number | null = null;
  let longest = 0;
  for (let d = 0; d < WINDOW_DAYS; d += 1) {
    const day = WINDOW_START + d * DAY_MS;
    if (!cron.runsOn(new Date(day))) continue;
    for (const hour of cron.hours) {
      for (const minute of cron.minutes) {
        const at = day + (hour * 60 + minute) * 60_000;
        if (previous !== null) longest = Math.max(longest, at - previous);
        previous = at;
      }
    }
  }
  if (previous === null || longest === 0) {
    throw new CronScheduleError(`schedule '${schedule}' runs less than twice a year`);
  }
  return longest / 1000;
}
