import { expect, test } from 'vitest';
import { forEachConcurrently } from './fleet.ts';

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

test('runs every item in list order, never more than the concurrency at once', async () => {
  let running = 0;
  let most = 0;
  const started: number[] = [];
  await forEachConcurrently([0, 1, 2, 3, 4, 5, 6], 3, async (item, index) => {
    expect(index).toBe(item);
    started.push(item);
    most = Math.max(most, ++running);
    await tick();
    running--;
  });
  expect(started).toEqual([0, 1, 2, 3, 4, 5, 6]);
  expect(most).toBe(3);
});

test('a throw starts no further item, lets the running ones finish, and is thrown', async () => {
  const finished: number[] = [];
  const stop = new Error('catalog gone');
  await expect(
    forEachConcurrently([0, 1, 2, 3, 4, 5], 2, async (item) => {
      await tick();
      if (item === 1) throw stop;
      finished.push(item);
    }),
  ).rejects.toBe(stop);
  // Item 2 had started when item 1 threw (item 0 finished first and freed its slot); 3 to 5 never start.
  expect(finished).toEqual([0, 2]);
});

test('an empty list does nothing', async () => {
  await forEachConcurrently([], 4, async () => {
    throw new Error('not called');
  });
});
