import { describe, expect, it } from 'vitest';
import { journalLessExt4Devices } from './settle.ts';

const MOUNTS = [
  '/dev/vda / ext4 rw,relatime,discard 0 0',
  '/dev/vdb1 /data ext4 rw,relatime 0 0',
  '/dev/vdc /srv xfs rw,relatime 0 0',
  'tmpfs /tmp tmpfs rw 0 0',
  '/dev/vda /var/lib/docker ext4 rw,relatime 0 0',
].join('\n');

describe('journalLessExt4Devices', () => {
  it('names the ext4 devices that have no jbd2 journal, once each', () => {
    expect(journalLessExt4Devices(MOUNTS, ['vdb1-8'])).toEqual(['vda']);
  });

  it('names none when every ext4 device has a journal, and ignores other filesystems', () => {
    expect(journalLessExt4Devices(MOUNTS, ['vda-8', 'vdb1-8'])).toEqual([]);
  });

  it('does not take a journal of a longer device name for the shorter one', () => {
    expect(journalLessExt4Devices(MOUNTS, ['vda1-8', 'vdb1-8'])).toEqual(['vda']);
  });
});
