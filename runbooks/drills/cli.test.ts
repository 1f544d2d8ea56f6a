import { describe, expect, test } from 'vitest';
import { EXIT, main } from './cli.ts';
import { redactCredentials } from './redact.ts';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t) }, out, err };
}

describe('dr-drill messages never carry a credential', () => {
  test.each([
    ['--database-url', 'postgres//admin:hunter2-db@db.internal:5432/platform'],
    ['--database-url', 'mysql://admin:hunter2-db@db.internal:3306/platform'],
    ['--verify-database-url', 'http://admin:hunter2-db@db.internal/platform'],
    ['--redis-url', 'redis//:hunter2-db@cache.internal:6379'],
    ['--redis-url', 'memcached://default:hunter2-db@cache.internal:6379'],
  ])('a bad %s is refused with its password redacted', async (flag, url) => {
    const c = capture();
    expect(await main(['rds-failover', '--env', 'dev', flag, url], c.io)).toBe(EXIT.usage);
    const printed = [...c.out, ...c.err].join('\n');
    expect(printed).toContain(flag);
    expect(printed).toContain('***');
    expect(printed).not.toContain('hunter2');
  });

  test.each([
    ['postgresql://admin:s3cret@db:5432/x', 'postgresql://admin:***@db:5432/x'],
    ['redis://:s3cret@cache:6379', 'redis://:***@cache:6379'],
    ['got "postgres//u:s3cret@h/db"', 'got "postgres//u:***@h/db"'],
    ['user:s3cret@host', 'user:***@host'],
    ['no credential in postgresql://db:5432/x', 'no credential in postgresql://db:5432/x'],
  ])('redacts %s', (text, expected) => {
    expect(redactCredentials(text)).toBe(expected);
  });
});

describe('dr-drill with no arguments', () => {
  test('prints its help and exits 2', async () => {
    const c = capture();
    expect(await main([], c.io)).toBe(EXIT.usage);
    const printed = c.err.join('\n');
    expect(printed).toMatch(/Usage: dr-drill/);
    for (const command of ['rds-failover', 'snapshot-restore', 'pitr', 'cache-failover', 'cleanup'])
      expect(printed).toContain(command);
  });
});
