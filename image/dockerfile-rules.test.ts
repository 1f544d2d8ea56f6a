import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { checkRuntimeDockerfile } from './dockerfile-rules.ts';

const ROOT = new URL('..', import.meta.url);
const DIGEST = `sha256:${'a'.repeat(64)}`;

const compliant = `
FROM node:20-slim@${DIGEST} AS build
RUN npm ci
RUN npm run build
FROM node:20-slim@${DIGEST} AS runtime
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY --from=build /app/dist ./dist
USER 10001:10001
CMD ["node", "dist/bin/control-plane.js"]
`;

describe('the runtime Dockerfile', () => {
  test('the repository Dockerfile keeps every rule', () => {
    expect(checkRuntimeDockerfile(readFileSync(new URL('Dockerfile', ROOT), 'utf8'))).toEqual([]);
  });

  test('a compliant Dockerfile has no findings', () => {
    expect(checkRuntimeDockerfile(compliant)).toEqual([]);
  });

  test.each([
    ['an unpinned base', compliant.replaceAll(`@${DIGEST}`, ''), /pinned by a sha256 digest/],
    [
      'a single stage',
      compliant.split('FROM node:20-slim').slice(0, 1).join('') + compliant.split('\n').slice(4).join('\n'),
      /multi-stage/,
    ],
    ['a root user', compliant.replace('USER 10001:10001', 'USER 0'), /non-root numeric uid/],
    ['a named user', compliant.replace('USER 10001:10001', 'USER node'), /non-root numeric uid/],
    ['no user at all', compliant.replace('USER 10001:10001\n', ''), /non-root numeric uid/],
    ['dev dependencies at run time', compliant.replace('npm ci --omit=dev', 'npm ci'), /npm ci --omit=dev/],
    [
      'npm install instead of ci',
      compliant.replace('npm ci --omit=dev', 'npm install --omit=dev'),
      /npm ci --omit=dev/,
    ],
    [
      'tsx at run time',
      compliant.replace('"node", "dist/bin/control-plane.js"', '"npx", "tsx", "bin/control-plane.ts"'),
      /not tsx/,
    ],
    [
      'the sources in the runtime stage',
      compliant.replace('COPY --from=build /app/dist ./dist', 'COPY . .'),
      /only package files/,
    ],
  ])('refuses %s', (_name, content, rule) => {
    const findings = checkRuntimeDockerfile(content);
    expect(findings.map((f) => f.rule).join('\n')).toMatch(rule);
  });

  test('.dockerignore keeps dependencies, build output, state and secrets out of the context', () => {
    const ignored = readFileSync(new URL('.dockerignore', ROOT), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    expect(ignored).toEqual(
      expect.arrayContaining(['.git', 'node_modules', 'dist', 'cdk.out', '.data', '.env']),
    );
  });

  test('tsx and the compilers are dev dependencies, so npm ci --omit=dev leaves them out', () => {
    const pkg = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    for (const dev of ['tsx', 'typescript', 'vitest', '@biomejs/biome']) {
      expect(pkg.dependencies).not.toHaveProperty(dev);
      expect(pkg.devDependencies).toHaveProperty(dev);
    }
  });
});
