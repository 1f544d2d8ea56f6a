import { describe, expect, test } from 'vitest';
import { parseTenantId, TenantIdError, tenantIdProblem } from './tenant-id.ts';

describe('rejected ids', () => {
  test.each([
    ['uppercase', 'Acme', /must start with a lowercase letter/],
    ['leading digit', '1abc', /must start with a lowercase letter/],
    ['too short', 'ab', /3 to 30 characters, got 2/],
    ['31 characters', 'a'.repeat(31), /3 to 30 characters, got 31/],
    ['reserved', 'admin', /is reserved/],
    ['reserved pg_ prefix', 'pg_x', /reserved prefix 'pg_'/],
    ['SQL injection', 'a;drop', /only a-z, 0-9 and inner hyphens/],
    ['space', 'a b', /only a-z, 0-9 and inner hyphens/],
    ['unicode', 'acmé', /only a-z, 0-9 and inner hyphens/],
    ['empty', '', /3 to 30 characters, got 0/],
    ['trailing hyphen', 'acme-', /only a-z, 0-9 and inner hyphens/],
    ['double hyphen', 'ac--me', /consecutive hyphens/],
    ['underscore', 'acme_co', /only a-z, 0-9 and inner hyphens/],
    ['kube- prefix', 'kube-x', /reserved prefix 'kube-'/],
  ])('%s (%j)', (_label, id, why) => {
    expect(tenantIdProblem(id)).toMatch(why);
    expect(() => parseTenantId(id)).toThrow(TenantIdError);
    expect(() => parseTenantId(id)).toThrow(`invalid tenant id ${JSON.stringify(id)}`);
  });
});

describe('accepted ids', () => {
  test.each(['acme', 'abc', 'a1b', 'acme-corp', 'x9-y8-z7', 'a'.repeat(30), 'globex-2026'])('%s', (id) => {
    expect(tenantIdProblem(id)).toBeUndefined();
    expect(parseTenantId(id)).toBe(id);
  });
});
