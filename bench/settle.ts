import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

/** fs/ext4/ialloc.c, RECENTCY_MIN: seconds a freed inode is skipped once its inode table block is written. */
const RECENTCY_MIN_SECONDS = 60;

/**
 * The ext4 devices of `mounts` (/proc/mounts) that have no journal: jbd2 lists each journal in /proc/fs/jbd2
 * as `<device>-<inode>`, e.g. `vda1-8`.
 */
export function journalLessExt4Devices(mounts: string, journals: readonly string[]): string[] {
  const devices = mounts
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields[2] === 'ext4' && fields[0]!.startsWith('/dev/'))
    .map((fields) => path.basename(fields[0]!));
  return [...new Set(devices)].filter((dev) => !journals.some((j) => j.startsWith(`${dev}-`)));
}

async function journalLessExt4(): Promise<string[]> {
  const journals = await readdir('/proc/fs/jbd2').catch(() => null);
  if (journals === null) return [];
  return journalLessExt4Devices(await readFile('/proc/mounts', 'utf8').catch(() => ''), journals);
}

/**
 * Lets the inodes that earlier benchmarks freed age out before a benchmark that creates many files.
 *
 * On ext4 without a journal (this machine's root filesystem) a new inode skips every inode freed in the last
 * 60 s, or 360 s while its inode table block is not yet written back, reading each one on the way
 * (`recently_deleted` in fs/ext4/ialloc.c). The fleet and move benchmarks drop some 25,000 relation files
 * just before onboarding runs; perf then showed 16% of the machine in that check, and 1,000 tenants took
 * 17.9 s instead of 14.0 s. `sync` writes the inode tables back, the wait covers the 60 s.
 *
 * Returns the milliseconds waited: 0 when no ext4 filesystem runs without a journal.
 */
export async function settleFilesystem(): Promise<number> {
  if ((await journalLessExt4()).length === 0) return 0;
  const started = performance.now();
  await promisify(execFile)('sync');
  await sleep((RECENTCY_MIN_SECONDS + 1) * 1_000);
  return Math.round(performance.now() - started);
}
